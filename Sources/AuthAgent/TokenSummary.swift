import Foundation
import TokenStore

/// What `exchangeCode`, `handleRedirect` and `getToken` answer. The refresh token is never part of it.
struct TokenSummary: Encodable, Sendable {
    var key: String
    var accessToken: String
    var tokenType: String
    var expiresAt: String
    var expiresIn: Int
    var refreshExpiresAt: String?

    init(_ token: StoredToken, now: Date) {
        key = token.key
        accessToken = token.accessToken
        tokenType = "Bearer"
        expiresAt = RFC3339.string(token.expiresAt)
        expiresIn = Int(ExpiresIn.seconds(until: token.expiresAt, now: now))
        refreshExpiresAt = token.refreshExpiresAt.map(RFC3339.string)
    }
}

/// `expiresIn` as every answer writes it: whole seconds from `now` until `date`, rounded down, never
/// negative, and never trapping, whatever a row holds (a year-506713 expiry written before lifetimes were
/// clamped, an infinity or a NaN): the conversion to an integer clamps.
enum ExpiresIn {
    static func seconds(until date: Date, now: Date) -> Int64 {
        let seconds = date.timeIntervalSince(now).rounded(.down)
        guard seconds > 0 else { return 0 }  // NaN too
        return seconds < 0x1p63 ? Int64(seconds) : .max
    }
}

/// RFC 3339 UTC timestamps, whole seconds (`2026-11-25T10:00:00Z`), as every time in the protocol is written.
package enum RFC3339 {
    private static let style = Date.ISO8601FormatStyle(timeZone: .gmt)

    /// Times outside years 0001-9999 (which RFC 3339 cannot write) are written as the nearest one it can.
    package static func string(_ date: Date) -> String {
        let seconds = date.timeIntervalSinceReferenceDate
        guard seconds.isFinite, (earliest...latest).contains(seconds) else {
            return style.format(Date(timeIntervalSinceReferenceDate: seconds > 0 ? latest : earliest))
        }
        return style.format(date)
    }

    /// Early in year 0001 and 9999-12-31T23:59:59Z, in seconds since 2001-01-01.
    private static let earliest: TimeInterval = -63_113_904_000
    private static let latest: TimeInterval = 252_423_993_599

    /// Parses `2026-11-25T10:00:00Z`, with or without fractional seconds, with any UTC offset.
    package static func date(_ text: String) -> Date? {
        if let date = try? style.parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}
