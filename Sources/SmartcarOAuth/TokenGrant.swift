import Foundation
import WireFormats

/// A user's token pair from a code exchange or a refresh, with absolute expiries computed on our clock
/// (Smartcar sends only `expires_in`; refresh tokens last 60 days). `description` hides the tokens.
package struct TokenGrant: Sendable, Equatable, CustomStringConvertible {
    package var accessToken: String
    package var tokenType: String
    package var refreshToken: String
    package var expiresAt: Date
    package var refreshExpiresAt: Date

    package static let refreshTokenLifetime: TimeInterval = 60 * 24 * 3600

    package init(
        accessToken: String, tokenType: String = "Bearer", refreshToken: String, expiresAt: Date, refreshExpiresAt: Date
    ) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
        self.refreshExpiresAt = refreshExpiresAt
    }

    package var description: String {
        "TokenGrant(accessToken: <redacted>, tokenType: \(tokenType), refreshToken: <redacted>, expiresAt: \(expiresAt), refreshExpiresAt: \(refreshExpiresAt))"
    }
}

/// An application token (client credentials): one hour, no refresh token. `description` hides the token.
package struct ApplicationToken: Sendable, Equatable, CustomStringConvertible {
    package var accessToken: String
    package var tokenType: String
    package var expiresAt: Date

    package init(accessToken: String, tokenType: String = "Bearer", expiresAt: Date) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresAt = expiresAt
    }

    package var description: String {
        "ApplicationToken(accessToken: <redacted>, tokenType: \(tokenType), expiresAt: \(expiresAt))"
    }
}

/// The fields of a successful token answer. Lenient where leniency cannot hurt: a missing `token_type` is
/// `Bearer` and a missing (or null) `expires_in` the documented default. A lifetime is never trusted as
/// sent: one under a second (zero, negative, NaN) or not a number makes the answer unusable, and one
/// above `maximumAccessLifetime` (1e20, 2^63-1, a number too large for a `Double`) is clamped to it, so no
/// expiry computed from upstream is ever out of range.
///
/// A refresh token is read first and survives whatever else is wrong: a 200 answer to a refresh has
/// rotated the token Smartcar holds, so an unusable answer still carries the only valid refresh token
/// (`MalformedBody.refreshToken`).
struct TokenResponseBody {
    var accessToken: String
    var tokenType: String
    var expiresIn: TimeInterval
    var refreshToken: String?

    /// The longest access-token lifetime believed: one year (Smartcar's are two hours).
    static let maximumAccessLifetime: TimeInterval = 365 * 24 * 3600
    /// The shortest: an access token valid for less than a second is no token.
    static let minimumAccessLifetime: TimeInterval = 1

    /// The fields, or why the answer is unusable (a reason that never quotes the body).
    static func parse(_ body: Data, defaultExpiresIn: TimeInterval) -> Result<TokenResponseBody, MalformedBody> {
        guard case .object(let members)? = decodeObject(body) else {
            return .failure(MalformedBody(reason: body.isEmpty ? "an empty body" : "a body that is not a JSON object"))
        }
        let refreshToken = members["refresh_token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        guard let accessToken = members["access_token"]?.stringValue, !accessToken.isEmpty else {
            return .failure(MalformedBody(reason: "no access_token", refreshToken: refreshToken))
        }
        let expiresIn: TimeInterval
        switch lifetime(members["expires_in"], default: defaultExpiresIn) {
        case .success(let seconds): expiresIn = seconds
        case .failure(let reason): return .failure(MalformedBody(reason: reason.text, refreshToken: refreshToken))
        }
        let tokenType = members["token_type"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? "Bearer"
        return .success(
            TokenResponseBody(
                accessToken: accessToken, tokenType: tokenType, expiresIn: expiresIn, refreshToken: refreshToken))
    }

    /// `expires_in` in seconds, clamped to `maximumAccessLifetime`, or why it is unusable.
    static func lifetime(_ value: JSONValue?, default defaultSeconds: TimeInterval) -> Result<TimeInterval, Reason> {
        let seconds: Double
        switch value {
        case nil, .null?: return .success(defaultSeconds)
        case .int(let number)?: seconds = Double(number)
        case .double(let number)?: seconds = number
        case .string(let text)?:
            guard let number = Double(text.trimmingCharacters(in: .whitespaces)) else {
                return .failure(Reason(text: "expires_in is not a number"))
            }
            seconds = number
        default: return .failure(Reason(text: "expires_in is not a number"))
        }
        // NaN fails this comparison too.
        guard seconds >= minimumAccessLifetime else {
            return .failure(Reason(text: "expires_in is not a lifetime of at least 1 second"))
        }
        return .success(min(seconds, maximumAccessLifetime))
    }

    /// The body as JSON. A number too large for a `Double` (`1e400`) makes the JSON decoder refuse the
    /// whole body, refresh token included: such numbers are read again as strings holding their text,
    /// which `lifetime` reads as infinite (and clamps).
    private static func decodeObject(_ body: Data) -> JSONValue? {
        if let value = try? JSONDecoder().decode(JSONValue.self, from: body) { return value }
        guard let quoted = quotingOutOfRangeNumbers(body) else { return nil }
        return try? JSONDecoder().decode(JSONValue.self, from: quoted)
    }

    /// `body` with every number outside strings that is not a finite `Double` written as a JSON string,
    /// or nil when there is none (the body is then malformed for another reason).
    static func quotingOutOfRangeNumbers(_ body: Data) -> Data? {
        let bytes = [UInt8](body)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var changed = false
        var index = 0
        var inString = false
        while index < bytes.count {
            let byte = bytes[index]
            if inString {
                out.append(byte)
                if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                    out.append(bytes[index + 1])
                    index += 2
                    continue
                }
                if byte == UInt8(ascii: "\"") { inString = false }
                index += 1
                continue
            }
            if byte == UInt8(ascii: "\"") {
                inString = true
                out.append(byte)
                index += 1
                continue
            }
            guard byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
                out.append(byte)
                index += 1
                continue
            }
            var end = index + 1
            while end < bytes.count, Self.numberBytes.contains(bytes[end]) { end += 1 }
            let token = bytes[index..<end]
            if let number = Double(String(decoding: token, as: UTF8.self)), !number.isFinite {
                out.append(UInt8(ascii: "\""))
                out.append(contentsOf: token)
                out.append(UInt8(ascii: "\""))
                changed = true
            } else {
                out.append(contentsOf: token)
            }
            index = end
        }
        return changed ? Data(out) : nil
    }

    private static let numberBytes = Set("0123456789+-.eE".utf8)

    struct Reason: Error { var text: String }

    struct MalformedBody: Error {
        var reason: String
        /// The refresh token the answer carried, if any: it must be kept although the answer is unusable.
        var refreshToken: String?
    }
}
