import Foundation

/// One user's tokens as the store keeps them. `description`, `debugDescription` and `dump` never show
/// the token values, so a `StoredToken` can be logged or interpolated safely.
///
/// Dates are stored as Unix seconds in a SQLite REAL, which keeps them to about a microsecond; a value
/// returned by the store is exactly what a later `load` returns.
public struct StoredToken: Sendable, Equatable {
    public var key: String
    public var accessToken: String
    public var refreshToken: String
    public var expiresAt: Date
    public var refreshExpiresAt: Date?
    public var scope: String?
    /// Bumped by every write of new tokens (`save`, `commitRefresh`); the store ignores the value it is given.
    public var generation: Int64
    public var lastRefreshedAt: Date?
    /// Set when Smartcar rejected the stored refresh token: the user must go through Connect again.
    public var needsReauth: Bool

    public init(
        key: String,
        accessToken: String,
        refreshToken: String,
        expiresAt: Date,
        refreshExpiresAt: Date? = nil,
        scope: String? = nil,
        generation: Int64 = 0,
        lastRefreshedAt: Date? = nil,
        needsReauth: Bool = false
    ) {
        self.key = key
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
        self.refreshExpiresAt = refreshExpiresAt
        self.scope = scope
        self.generation = generation
        self.lastRefreshedAt = lastRefreshedAt
        self.needsReauth = needsReauth
    }
}

extension StoredToken: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "StoredToken(key: \(key), generation: \(generation), expiresAt: \(expiresAt), needsReauth: \(needsReauth), tokens: <redacted>)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: [
            "key": key, "expiresAt": expiresAt, "refreshExpiresAt": refreshExpiresAt as Any, "scope": scope as Any,
            "generation": generation, "lastRefreshedAt": lastRefreshedAt as Any, "needsReauth": needsReauth,
        ])
    }
}
