import Foundation

/// What `acquireLease` found.
package enum LeaseOutcome: Sendable, Equatable {
    /// You hold the lease; the row as re-read inside the transaction (nil: no such key, nothing was leased).
    case acquired(StoredToken?)
    /// Another owner holds an unexpired lease until `until`; `current` is the row as it is now.
    case heldByOther(until: Date, current: StoredToken?)
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
    /// `needsReauth` cleared) and clears the lease, in one durable transaction.
    ///
    /// It writes even when `owner` no longer holds the lease (it expired, or another owner took it) and
    /// even when the row was deleted meanwhile: Smartcar has already invalidated the refresh token this
    /// refresh spent, so the freshly rotated one in `token` is the only live one and throwing it away
    /// would force the user through Connect again. Those cases are logged as warnings.
    @discardableResult
    package func commitRefresh(
        _ token: StoredToken, owner: String, now: Date = Date()
    ) async throws(StoreError) -> StoredToken {
        let logger = self.logger
        return try await queue.write { connection throws(StoreError) in
            let key = token.key
            if let row = try TokenRows.load(key, connection) {
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
            return try TokenRows.writeNewTokens(token, lastRefreshedAt: token.lastRefreshedAt ?? now, connection)
        }
    }

    /// Clears the lease if `owner` holds it (expired or not); answers whether it did. Another owner's
    /// lease is left alone.
    @discardableResult
    package func releaseLease(_ key: String, owner: String) async throws(StoreError) -> Bool {
        try await queue.write { connection throws(StoreError) in try TokenRows.clearLease(key, owner: owner, connection)
        }
    }
}
