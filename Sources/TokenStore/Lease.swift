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

/// Leases make refreshes single-flight across processes: only the lease holder spends the refresh token.
/// A lease is two columns of the token's row (`lease_owner`, `lease_expires_at`), so it lives and dies
/// with the row, and expires by itself if its holder crashes.
extension TokenStore {
    /// In one `BEGIN IMMEDIATE` transaction: re-reads the row; if another owner holds an unexpired lease,
    /// answers `.heldByOther`; otherwise takes (or extends) the lease until `now + duration` and answers
    /// `.acquired(row)`. A missing key answers `.acquired(nil)` and writes nothing.
    /// Throws `.busy` if another process kept the database locked beyond the busy timeout: retry.
    /// `holderIsGone` lets the caller declare a holder dead (its process no longer exists), so its lease is
    /// taken at once instead of after it expires.
    package func acquireLease(
        _ key: String, owner: String, duration: TimeInterval, now: Date,
        holderIsGone: @escaping @Sendable (String) -> Bool = { _ in false }
    ) async throws(StoreError) -> LeaseOutcome {
        let logger = self.logger
        return try await queue.write { connection throws(StoreError) in
            guard let row = try TokenRows.load(key, connection) else { return .acquired(nil) }
            if let holder = row.leaseOwner, holder != owner, let until = row.leaseExpiresAt, until > now {
                guard holderIsGone(holder) else { return .heldByOther(until: until, current: row.token) }
                logger.notice("key '\(key)': taking over the refresh lease of '\(holder)', whose process is gone")
            }
            try TokenRows.setLease(key, owner: owner, until: now.addingTimeInterval(duration), connection)
            return .acquired(row.token)
        }
    }

    /// Writes refreshed tokens (generation + 1, `lastRefreshedAt` = `token.lastRefreshedAt ?? now`,
    /// `needsReauth` cleared) and clears the lease, in one durable transaction, unconditionally: for a process
    /// that owns the store alone (the bench, tests). The agent commits with `commitRefresh(_:owner:replacing:)`.
    @discardableResult
    package func commitRefresh(
        _ token: StoredToken, owner: String, now: Date = Date()
    ) async throws(StoreError) -> StoredToken {
        let logger = self.logger
        let outcome = try await queue.write { connection throws(StoreError) in
            try Self.commit(token, owner: owner, replacing: nil, now: now, logger: logger, connection)
        }
        guard case .committed(let written) = outcome else { preconditionFailure("an unfenced commit always writes") }
        return written
    }

    /// Writes the tokens a refresh of `spent` obtained, fenced by the row: only if the key's row is still the
    /// one the refresh spent (same generation and refresh token). Then it writes (generation + 1,
    /// `lastRefreshedAt` = `token.lastRefreshedAt ?? now`, `needsReauth` cleared, lease cleared) in one
    /// durable transaction, even when `owner` no longer holds the lease (it expired, or another owner took
    /// it): Smartcar has already invalidated the spent refresh token, so the rotated one in `token` is the
    /// only live one. Those cases are logged as warnings.
    ///
    /// If the row moved on (deleted, or new tokens stored, exchanged or refreshed by anyone since), the later
    /// operation wins: nothing is written, the rotated tokens of the superseded grant are discarded with a
    /// warning, and the answer is `.superseded` with the row as it is now.
    package func commitRefresh(
        _ token: StoredToken, owner: String, replacing spent: StoredToken, now: Date = Date()
    ) async throws(StoreError) -> RefreshCommit {
        let logger = self.logger
        return try await queue.write { connection throws(StoreError) in
            try Self.commit(token, owner: owner, replacing: spent, now: now, logger: logger, connection)
        }
    }

    private static func commit(
        _ token: StoredToken, owner: String, replacing spent: StoredToken?, now: Date, logger: Logger,
        _ connection: SQLiteConnection
    ) throws(StoreError) -> RefreshCommit {
        let key = token.key
        let row = try TokenRows.load(key, connection)
        if let spent {
            guard let row, row.token.generation == spent.generation, row.token.refreshToken == spent.refreshToken
            else {
                logger.warning(
                    "key '\(key)': refresh by '\(owner)' superseded (the key was \(row == nil ? "forgotten" : "replaced") while it ran); discarding the rotated tokens of the old grant"
                )
                if let row, row.leaseOwner == owner { _ = try TokenRows.clearLease(key, owner: owner, connection) }
                return .superseded(current: row?.token)
            }
        }
        if let row {
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
        } else {
            logger.warning(
                "key '\(key)': refresh by '\(owner)' committed after the key was deleted; re-creating it with the rotated tokens"
            )
        }
        return .committed(
            try TokenRows.writeNewTokens(token, lastRefreshedAt: token.lastRefreshedAt ?? now, connection))
    }

    /// Clears the lease if `owner` holds it (expired or not); answers whether it did. Another owner's
    /// lease is left alone.
    @discardableResult
    package func releaseLease(_ key: String, owner: String) async throws(StoreError) -> Bool {
        try await queue.write { connection throws(StoreError) in try TokenRows.clearLease(key, owner: owner, connection)
        }
    }
}
