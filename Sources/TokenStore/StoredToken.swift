import Foundation

/// One user's tokens as the store keeps them. `description`, `debugDescription` and `dump` never show
/// the token values, so a `StoredToken` can be logged or interpolated safely.
///
/// Dates are stored as Unix seconds in a SQLite REAL, which keeps them to about a microsecond; a value
/// returned by the store is exactly what a later `load` returns.
package struct StoredToken: Sendable, Equatable {
    package var key: String
    package var accessToken: String
    package var refreshToken: String
    package var expiresAt: Date
    package var refreshExpiresAt: Date?
    package var scope: String?
    /// Bumped by every write of new tokens (`save`, `commitRefresh`); the store ignores the value it is given.
    package var generation: Int64
    package var lastRefreshedAt: Date?
    /// Set when Smartcar rejected the stored refresh token: the user must go through Connect again.
    package var needsReauth: Bool
    /// How the grant was connected (scope, mode and the other Connect options), as text the agent defines: set
    /// by save (store, exchange), kept by refreshes, so a re-authorization asks for the same access.
    package var connectOptions: String?

    package init(
        key: String,
        accessToken: String,
        refreshToken: String,
        expiresAt: Date,
        refreshExpiresAt: Date? = nil,
        scope: String? = nil,
        generation: Int64 = 0,
        lastRefreshedAt: Date? = nil,
        needsReauth: Bool = false,
        connectOptions: String? = nil
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
        self.connectOptions = connectOptions
    }
}

extension StoredToken: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    package var description: String {
        "StoredToken(key: \(key), generation: \(generation), expiresAt: \(expiresAt), needsReauth: \(needsReauth), tokens: <redacted>)"
    }

    package var debugDescription: String { description }

    package var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "key": key, "expiresAt": expiresAt, "refreshExpiresAt": refreshExpiresAt as Any, "scope": scope as Any,
                "generation": generation, "lastRefreshedAt": lastRefreshedAt as Any, "needsReauth": needsReauth,
                "connectOptions": connectOptions as Any,
            ])
    }
}
