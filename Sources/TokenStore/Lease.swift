import AgentSupport
import Foundation

/// What `acquireLease` found.
package enum LeaseOutcome: Sendable, Equatable {
    /// You hold the lease; the row as re-read inside the transaction (nil: no such key, nothing was leased).
    case acquired(StoredToken?)
    /// Another owner holds an unexpired lease until `until`; `current` is the row as it is now.
    case heldByOther(until: Date, current: StoredToken?)
}

/// What a fenced `commitRefresh` did.
package enum RefreshCommit: Sendable, Equatable {
    /// The rotated tokens are stored; the row as written.
    case committed(StoredToken)
    /// The row moved on while the refresh ran (nil: the key was deleted); nothing was written.
    case superseded(current: StoredToken?)
}

/// A row with the lease columns that only the store looks at. A lease lives and dies with its row, and expires
/// by itself if its holder crashes.
struct TokenRow: Sendable {
    var token: StoredToken
    var leaseOwner: String?
    var leaseExpiresAt: Date?
}

/// The decisions of leases and fenced commits, taken on the row as read inside the write transaction. Every
/// backend applies these same rules, so they behave alike (the conformance suite checks it).
enum LeaseRules {
    /// Whether `owner` may take the lease on `row` at `now` (nil: it may); else the answer to give.
    static func refusal(
        _ row: TokenRow, owner: String, now: Date, holderIsGone: (String) -> Bool, logger: Logger
    ) -> LeaseOutcome? {
        guard let holder = row.leaseOwner, holder != owner, let until = row.leaseExpiresAt, until > now else {
            return nil
        }
        guard holderIsGone(holder) else { return .heldByOther(until: until, current: row.token) }
        logger.notice("key '\(row.token.key)': taking over the refresh lease of '\(holder)', whose process is gone")
        return nil
    }

    /// Whether a refresh commit of `key` by `owner` that spent `spent` must be discarded because the row moved on
    /// (deleted, or new tokens written since). Logs why (never a token).
    static func isSuperseded(_ row: TokenRow?, key: String, spent: StoredToken?, owner: String, logger: Logger) -> Bool
    {
        guard let spent else { return false }
        if let row, row.token.generation == spent.generation, row.token.refreshToken == spent.refreshToken {
            return false
        }
        logger.warning(
            "key '\(key)': refresh by '\(owner)' superseded (the key was \(row == nil ? "forgotten" : "replaced") while it ran); discarding the rotated tokens of the old grant"
        )
        return true
    }

    /// A commit that writes even when `owner` no longer holds the lease: Smartcar has already invalidated the
    /// spent refresh token, so the rotated one is the only live one. Those cases are logged as warnings.
    static func warnAboutLease(_ row: TokenRow?, key: String, owner: String, now: Date, logger: Logger) {
        guard let row else {
            logger.warning(
                "key '\(key)': refresh by '\(owner)' committed after the key was deleted; re-creating it with the rotated tokens"
            )
            return
        }
        if let holder = row.leaseOwner, holder != owner, let until = row.leaseExpiresAt, until > now {
            logger.warning(
                "key '\(key)': refresh by '\(owner)' committed while '\(holder)' holds the lease; keeping the rotated tokens, the old refresh token is dead"
            )
        } else if row.leaseOwner != owner {
            logger.warning(
                "key '\(key)': refresh by '\(owner)' committed without holding the lease (it expired and was taken or released); keeping the rotated tokens"
            )
        } else if let until = row.leaseExpiresAt, until <= now {
            logger.warning(
                "key '\(key)': refresh by '\(owner)' committed after its lease expired; keeping the rotated tokens"
            )
        }
    }
}

/// Leases on SQLite: two columns of the token's row, read and written in one `BEGIN IMMEDIATE` transaction.
/// Throws `.busy` if another process kept the database locked beyond the busy timeout: retry.
extension SQLiteTokenStore {
    package func acquireLease(
        _ key: String, owner: String, duration: TimeInterval, now: Date,
        holderIsGone: @escaping @Sendable (String) -> Bool
    ) async throws(StoreError) -> LeaseOutcome {
        let (logger, application) = (self.logger, self.application)
        return try await queue.write { connection throws(StoreError) in
            guard let row = try TokenRows.load(key, application, connection) else { return .acquired(nil) }
            if let refusal = LeaseRules.refusal(row, owner: owner, now: now, holderIsGone: holderIsGone, logger: logger)
            {
                return refusal
            }
            try TokenRows.setLease(key, application, owner: owner, until: now.addingTimeInterval(duration), connection)
            return .acquired(row.token)
        }
    }

    package func commitRefresh(
        _ token: StoredToken, owner: String, replacing spent: StoredToken?, now: Date
    ) async throws(StoreError) -> RefreshCommit {
        let (logger, application, origin, capacity) = (self.logger, self.application, self.origin, changeLogCapacity)
        return try await queue.write { connection throws(StoreError) in
            let key = token.key
            let row = try TokenRows.load(key, application, connection)
            if LeaseRules.isSuperseded(row, key: key, spent: spent, owner: owner, logger: logger) {
                if let row, row.leaseOwner == owner {
                    _ = try TokenRows.clearLease(key, application, owner: owner, connection)
                }
                return .superseded(current: row?.token)
            }
            LeaseRules.warnAboutLease(row, key: key, owner: owner, now: now, logger: logger)
            let written = try TokenRows.writeNewTokens(
                token, application, lastRefreshedAt: token.lastRefreshedAt ?? now, keepConnectOptions: true,
                connection)
            try ChangeRows.append(
                key, application, kind: .refreshed, origin: origin, capacity: capacity, connection)
            return .committed(written)
        }
    }

    package func releaseLease(_ key: String, owner: String) async throws(StoreError) -> Bool {
        let application = self.application
        return try await queue.write { connection throws(StoreError) in
            try TokenRows.clearLease(key, application, owner: owner, connection)
        }
    }
}
