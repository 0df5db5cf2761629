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
/// `Bearer` and a missing `expires_in` the documented default, because refusing a refresh answer would
/// lose the rotated refresh token it carries. A missing token is malformed.
struct TokenResponseBody {
    var accessToken: String
    var tokenType: String
    var expiresIn: TimeInterval
    var refreshToken: String?

    /// The fields, or why the answer is unusable (a reason that never quotes the body).
    static func parse(_ body: Data, defaultExpiresIn: TimeInterval) -> Result<TokenResponseBody, MalformedBody> {
        guard case .object(let members)? = try? JSONDecoder().decode(JSONValue.self, from: body) else {
            return .failure(MalformedBody(reason: body.isEmpty ? "an empty body" : "a body that is not a JSON object"))
        }
        guard let accessToken = members["access_token"]?.stringValue, !accessToken.isEmpty else {
            return .failure(MalformedBody(reason: "no access_token"))
        }
        var expiresIn = defaultExpiresIn
        switch members["expires_in"] {
        case .int(let seconds)?: expiresIn = TimeInterval(seconds)
        case .double(let seconds)? where seconds.isFinite: expiresIn = seconds
        case .string(let text)?: expiresIn = TimeInterval(text).flatMap { $0.isFinite ? $0 : nil } ?? defaultExpiresIn
        default: break
        }
        let tokenType = members["token_type"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? "Bearer"
        let refreshToken = members["refresh_token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        return .success(
            TokenResponseBody(
                accessToken: accessToken, tokenType: tokenType, expiresIn: expiresIn, refreshToken: refreshToken))
    }

    struct MalformedBody: Error { var reason: String }
}
