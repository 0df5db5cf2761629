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
        expiresIn = max(0, Int(token.expiresAt.timeIntervalSince(now).rounded(.down)))
        refreshExpiresAt = token.refreshExpiresAt.map(RFC3339.string)
    }
}

/// RFC 3339 UTC timestamps, whole seconds (`2026-11-25T10:00:00Z`), as every time in the protocol is written.
package enum RFC3339 {
    private static let style = Date.ISO8601FormatStyle(timeZone: .gmt)

    package static func string(_ date: Date) -> String { style.format(date) }

    /// Parses `2026-11-25T10:00:00Z`, with or without fractional seconds, with any UTC offset.
    package static func date(_ text: String) -> Date? {
        if let date = try? style.parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}
