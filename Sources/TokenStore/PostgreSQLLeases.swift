import Foundation

/// Leases, fenced refresh commits and Connect states on PostgreSQL.
extension PostgreSQLTokenStore {
    /// The time leases are compared with, from parameter `$index`: the caller's `now` (`.caller`), or NULL and
    /// then the database's `now()` (`.database`).
    private static func clock(_ index: Int) -> String {
        "coalesce($\(index)::float8, extract(epoch from now())::float8)"
    }

    private func clockParameter(_ now: Date) -> String? {
        leaseClock == .caller ? PostgreSQLTokenRows.seconds(now) : nil
    }

    /// One conditional update on the fast path (the lease is free, expired or ours); when it matches nothing,
    /// the row is read to tell a missing key from a held lease, and `LeaseRules` decides as on every backend (a
    /// holder `holderIsGone` declares dead is taken over, by an update conditional on the lease read).
    package func acquireLease(
        _ key: String, owner: String, duration: TimeInterval, now: Date,
        holderIsGone: @escaping @Sendable (String) -> Bool
    ) async throws(StoreError) -> LeaseOutcome {
        let (application, logger, clock, sealer) = (self.application, self.logger, Self.clock(5), self.sealer)
        let parameters = [application, key, owner, "\(duration)", clockParameter(now)]
        let take = """
            UPDATE tokens SET lease_owner = $3, lease_expires_at = \(clock) + $4::float8
            WHERE application = $1 AND key = $2
              AND (lease_owner IS NULL OR lease_owner = $3 OR lease_expires_at IS NULL OR lease_expires_at <= \(clock))
            RETURNING \(PostgreSQLTokenRows.columns)
            """
        let takeOver = """
            UPDATE tokens SET lease_owner = $3, lease_expires_at = \(clock) + $4::float8
            WHERE application = $1 AND key = $2 AND lease_owner IS NOT DISTINCT FROM $6
              AND lease_expires_at IS NOT DISTINCT FROM $7::float8
            RETURNING \(PostgreSQLTokenRows.columns)
            """
        let read =
            "SELECT \(PostgreSQLTokenRows.columns), \(Self.clock(3)) FROM tokens WHERE application = $1 AND key = $2"
        return try await pool.read { connection throws(PostgreSQLFailure) -> LeaseOutcome in
            for _ in 0..<5 {
                if let taken = try connection.execute(take, parameters).rows.first {
                    return .acquired(try PostgreSQLTokenRows.row(taken, sealer).token)
                }
                let found = try connection.execute(read, [application, key, parameters[4]]).rows
                guard let values = found.first else { return .acquired(nil) }
                let row = try PostgreSQLTokenRows.row(values, sealer)
                let databaseNow = PostgreSQLTokenRows.date(values[12]) ?? now
                if let refusal = LeaseRules.refusal(
                    row, owner: owner, now: databaseNow, holderIsGone: holderIsGone, logger: logger)
                {
                    return refusal
                }
                let expected = [row.leaseOwner, row.leaseExpiresAt.map(PostgreSQLTokenRows.seconds)]
                if let taken = try connection.execute(takeOver, parameters + expected).rows.first {
                    return .acquired(try PostgreSQLTokenRows.row(taken, sealer).token)
                }
            }
            throw PostgreSQLFailure(message: "the lease of key '\(key)' kept changing", connectionLost: false)
        }
    }

    /// Re-reads the row `FOR UPDATE` and applies `LeaseRules`: a refresh whose row moved on (a host that lost its
    /// lease while paused, and another one refreshed) commits nothing, and the log says it was superseded.
    package func commitRefresh(
        _ token: StoredToken, owner: String, replacing spent: StoredToken?, now: Date
    ) async throws(StoreError) -> RefreshCommit {
        let (application, logger, key, sealer) = (self.application, self.logger, token.key, self.sealer)
        let byDatabase = leaseClock == .database
        return try await pool.transaction { connection throws(PostgreSQLFailure) -> RefreshCommit in
            let values = try connection.execute(PostgreSQLTokenRows.lockOne, [application, key]).rows.first
            let row = try values.map { values throws(PostgreSQLFailure) in try PostgreSQLTokenRows.row(values, sealer) }
            if LeaseRules.isSuperseded(row, key: key, spent: spent, owner: owner, logger: logger) {
                if let row, row.leaseOwner == owner {
                    try connection.execute(PostgreSQLTokenRows.clearLease, [application, key, owner])
                }
                return .superseded(current: row?.token)
            }
            let leaseNow = byDatabase ? values.flatMap { PostgreSQLTokenRows.date($0[12]) } ?? now : now
            LeaseRules.warnAboutLease(row, key: key, owner: owner, now: leaseNow, logger: logger)
            let written = try self.writeNewTokens(
                token, lastRefreshedAt: token.lastRefreshedAt ?? now, keep: true, connection)
            self.logChange(key, .refreshed, connection)
            return .committed(written)
        }
    }

    package func releaseLease(_ key: String, owner: String) async throws(StoreError) -> Bool {
        let application = self.application
        return try await pool.write { connection throws(PostgreSQLFailure) in
            try connection.execute(PostgreSQLTokenRows.clearLease, [application, key, owner]).affected > 0
        }
    }

    package func issueState(_ state: ConnectState, capacity: Int, now: Date) async throws(StoreError) {
        let application = self.application
        try await pool.transaction { connection throws(PostgreSQLFailure) in
            try connection.execute(
                "DELETE FROM connect_states WHERE application = $1 AND (expires_at <= $2 OR state = $3)",
                [application, PostgreSQLTokenRows.seconds(now), state.state])
            try connection.execute(
                "INSERT INTO connect_states (application, state, key, options, expires_at) VALUES ($1, $2, $3, $4, $5)",
                [application, state.state, state.key, state.options, PostgreSQLTokenRows.seconds(state.expiresAt)])
            try connection.execute(
                """
                DELETE FROM connect_states WHERE application = $1 AND id <=
                    (SELECT id FROM connect_states WHERE application = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)
                """, [application, "\(max(capacity, 1))"])
        }
    }

    package func consumeState(_ state: String, now: Date) async throws(StoreError) -> StateClaim {
        let application = self.application
        let parameters = [application, state, PostgreSQLTokenRows.seconds(now)]
        return try await pool.write { connection throws(PostgreSQLFailure) -> StateClaim in
            let claimed = try connection.execute(
                """
                UPDATE connect_states SET consumed_at = $3
                WHERE application = $1 AND state = $2 AND consumed_at IS NULL AND expires_at > $3
                RETURNING key, options, expires_at
                """, parameters)
            if let row = claimed.rows.first {
                return .valid(
                    ConnectState(
                        state: state, key: row[0], options: row[1],
                        expiresAt: PostgreSQLTokenRows.date(row[2]) ?? now))
            }
            let status = try connection.execute(
                "SELECT consumed_at IS NOT NULL FROM connect_states WHERE application = $1 AND state = $2",
                Array(parameters.prefix(2)))
            guard let consumed = status.rows.first?.first else { return .unknown }
            return consumed == "t" ? .reused : .expired
        }
    }

    package func pruneStates(now: Date) async throws(StoreError) -> Int {
        try await pool.write { connection throws(PostgreSQLFailure) in
            try connection.execute(
                "DELETE FROM connect_states WHERE expires_at <= $1", [PostgreSQLTokenRows.seconds(now)]
            ).affected
        }
    }
}
