import Foundation
import WireFormats

/// A user's token pair from a code exchange or a refresh, with absolute expiries computed on our clock
/// (Smartcar sends only `expires_in`; refresh tokens last 60 days). `description` hides the tokens.
public struct TokenGrant: Sendable, Equatable, CustomStringConvertible {
    public var accessToken: String
    public var tokenType: String
    public var refreshToken: String
    public var expiresAt: Date
    public var refreshExpiresAt: Date

    public static let refreshTokenLifetime: TimeInterval = 60 * 24 * 3600

    public init(accessToken: String, tokenType: String = "Bearer", refreshToken: String, expiresAt: Date, refreshExpiresAt: Date) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
        self.refreshExpiresAt = refreshExpiresAt
    }

    public var description: String {
        "TokenGrant(accessToken: <redacted>, tokenType: \(tokenType), refreshToken: <redacted>, expiresAt: \(expiresAt), refreshExpiresAt: \(refreshExpiresAt))"
    }
}

/// An application token (client credentials): one hour, no refresh token. `description` hides the token.
public struct ApplicationToken: Sendable, Equatable, CustomStringConvertible {
    public var accessToken: String
    public var tokenType: String
    public var expiresAt: Date

    public init(accessToken: String, tokenType: String = "Bearer", expiresAt: Date) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresAt = expiresAt
    }

    public var description: String {
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
        return .success(TokenResponseBody(accessToken: accessToken, tokenType: tokenType, expiresIn: expiresIn, refreshToken: refreshToken))
    }

    struct MalformedBody: Error { var reason: String }
}
