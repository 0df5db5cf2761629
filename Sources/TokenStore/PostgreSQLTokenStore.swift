import AgentSupport
import Foundation
import Synchronization

/// Whose clock times the leases of a PostgreSQL store.
package enum PostgreSQLLeaseClock: Sendable, Equatable {
    /// The database's `now()`: every host agrees, whatever its own clock says; the `now:` argument of
    /// `acquireLease` is ignored for lease times. For agents.
    case database
    /// The `now:` argument of `acquireLease` and `commitRefresh`: only for the conformance suite's simulated times.
    case caller
}

/// The token store in a PostgreSQL database shared by the agents of many hosts, with the same semantics as
/// `SQLiteTokenStore` (the backend conformance suite runs on both).
///
/// Every write is one transaction committed with `synchronous_commit = on` before its method returns. Mutations
/// take their change-log sequence under one row lock (`PostgreSQLChangeRows`) and notify the store's channel;
/// followers listen on a connection of their own (`PostgreSQLListener`). Leases are a conditional update timed
/// by the database's clock, and every fenced write re-reads its row `FOR UPDATE` and applies `LeaseRules`, so a
/// host that lost its lease while paused writes nothing over a newer grant.
///
/// The database being unreachable surfaces as `.unavailable` errors; connections are reopened with backoff.
package final class PostgreSQLTokenStore: TokenStore {
    package let application: String
    package let origin: String
    /// The URI without its password, for the agent's start-up log line.
    package var displayName: String { pool.displayName }
    let pool: PostgreSQLPool
    let listener: PostgreSQLListener
    let leaseClock: PostgreSQLLeaseClock
    let channel: String
    let changeLogCapacity: Int
    let logger: Logger
    /// Seals and opens the token columns; nil in a store opened without secrets (unsealed, logged at open).
    let sealer: TokenSealer?
    /// How the store seals tokens, for `status` (`TokenSealer.modeDescription`).
    package var sealing: String { TokenSealer.modeDescription(sealer) }

    private init(
        application: String, origin: String, pool: PostgreSQLPool, listener: PostgreSQLListener,
        leaseClock: PostgreSQLLeaseClock, channel: String, changeLogCapacity: Int, sealer: TokenSealer?,
        logger: Logger
    ) {
        self.sealer = sealer
        self.application = application
        self.origin = origin
        self.pool = pool
        self.listener = listener
        self.leaseClock = leaseClock
        self.channel = channel
        self.changeLogCapacity = changeLogCapacity
        self.logger = logger
    }

    /// A store dropped without `close()` still stops its listener thread (its connections close with the pool).
    deinit { listener.stop() }

    /// Connects, builds or upgrades the schema (`PostgreSQLSchema`), claims rows stored without an application,
    /// sets up the sealing of the application's tokens with `secrets` (`PostgreSQLSealing`), and starts the change listener, whose first notification must arrive from another connection: a
    /// transaction-level pooler (PgBouncer `pool_mode = transaction`), which breaks `LISTEN` and the session
    /// settings the store relies on, is refused here. Blocking: call it at start-up. `busyTimeout`
    /// (`--store-busy-timeout`) bounds each statement's wait for a lock another session holds (`lock_timeout`):
    /// past it the call fails `.busy` instead of hanging; nil waits as long as it takes.
    package static func open(
        _ uri: String, application: String, origin: String = "pid \(getpid())", schema: String = "smartcar_auth",
        leaseClock: PostgreSQLLeaseClock = .database, changeLogCapacity: Int = defaultChangeLogCapacity,
        sealing secrets: StoreSecrets? = nil, busyTimeout: Duration? = nil, logger: Logger = .silent
    ) throws(StoreError) -> PostgreSQLTokenStore {
        try PostgreSQLSchema.validate(schema)
        let displayName = PostgreSQLURI.withoutPassword(uri)
        let connection: PostgreSQLConnection
        do {
            connection = try PostgreSQLConnection(uri: uri, schema: schema, lockTimeout: busyTimeout)
        } catch {
            throw StoreError(.unavailable, "could not connect to PostgreSQL \(displayName): \(error.message)")
        }
        // The pooler check comes first: behind a transaction-level pooler the rest would fail less clearly.
        let channel = PostgreSQLSchema.channel(schema)
        let listener = try PostgreSQLListener(
            uri: uri, schema: schema, channel: channel, displayName: displayName, logger: logger)
        let sealer: TokenSealer?
        do {
            try listener.expectProbe(from: connection)
            try PostgreSQLSchema.migrate(connection, schema: schema, displayName: displayName)
            try PostgreSQLSchema.claimUnboundRows(
                for: application, connection, displayName: displayName, logger: logger)
            sealer = try PostgreSQLSealing.prepare(
                secrets, application: application, connection, displayName: displayName, logger: logger)
        } catch {
            listener.stop()
            throw error
        }
        let pool = PostgreSQLPool(uri: uri, schema: schema, lockTimeout: busyTimeout, first: connection)
        return PostgreSQLTokenStore(
            application: application, origin: origin, pool: pool, listener: listener, leaseClock: leaseClock,
            channel: channel, changeLogCapacity: max(changeLogCapacity, 1), sealer: sealer, logger: logger)
    }

    package func load(_ key: String) async throws(StoreError) -> StoredToken? {
        let (application, sealer) = (self.application, self.sealer)
        return try await pool.read { connection throws(PostgreSQLFailure) in
            try connection.execute(PostgreSQLTokenRows.selectOne, [application, key]).rows.first.map {
                values throws(PostgreSQLFailure) in try PostgreSQLTokenRows.row(values, sealer).token
            }
        }
    }

    package func lookup(_ key: String) async throws(StoreError) -> KeyLookup {
        let (application, sealer) = (self.application, self.sealer)
        return try await pool.read { connection throws(PostgreSQLFailure) -> KeyLookup in
            if let row = try connection.execute(PostgreSQLTokenRows.selectOne, [application, key]).rows.first {
                return .found(try PostgreSQLTokenRows.row(row, sealer).token)
            }
            let elsewhere = try connection.execute(PostgreSQLTokenRows.existsElsewhere, [application, key])
            return elsewhere.rows.isEmpty ? .unknown : .otherApplication
        }
    }

    /// Rows whose values do not open are left out, and the log names them (as on SQLite).
    package func list() async throws(StoreError) -> [StoredToken] {
        let (application, sealer, logger) = (self.application, self.sealer, self.logger)
        return try await pool.read { connection throws(PostgreSQLFailure) in
            try connection.execute(PostgreSQLTokenRows.selectAll, [application]).rows.compactMap { values in
                do throws(PostgreSQLFailure) { return try PostgreSQLTokenRows.row(values, sealer).token } catch {
                    logger.warning("token store: \(error.message); the key is left out of the list")
                    return nil
                }
            }
        }
    }

    package func count() async throws(StoreError) -> Int {
        let application = self.application
        return try await pool.read { connection throws(PostgreSQLFailure) in
            Int(try connection.execute(PostgreSQLTokenRows.countAll, [application]).value ?? "") ?? 0
        }
    }

    package func save(_ token: StoredToken, kind: ChangeKind) async throws(StoreError) -> StoredToken {
        try await pool.transaction { connection throws(PostgreSQLFailure) in
            let written = try self.writeNewTokens(
                token, lastRefreshedAt: token.lastRefreshedAt, keep: false, connection)
            self.logChange(token.key, kind, connection)
            return written
        }
    }

    /// The fence is checked under the sequence row's lock, which every mutation takes before it commits, so no
    /// change of the key can commit between the check and this write. The key's row is locked first, as every
    /// other write does, so the two locks are always taken in the same order.
    package func save(
        _ token: StoredToken, kind: ChangeKind, unlessChangedAfter sequence: Int64
    ) async throws(StoreError) -> FencedSave {
        let application = self.application
        return try await pool.transaction { connection throws(PostgreSQLFailure) -> FencedSave in
            try connection.execute(PostgreSQLTokenRows.lockOne, [application, token.key])
            try connection.execute(PostgreSQLChangeRows.lock)
            if try PostgreSQLChangeRows.keyChanged(token.key, application, after: sequence, connection) {
                return .superseded
            }
            let written = try self.writeNewTokens(
                token, lastRefreshedAt: token.lastRefreshedAt, keep: false, connection)
            self.logChange(token.key, kind, connection)
            return .saved(written)
        }
    }

    package func delete(_ key: String) async throws(StoreError) -> Bool {
        let application = self.application
        return try await pool.transaction { connection throws(PostgreSQLFailure) in
            guard try connection.execute(PostgreSQLTokenRows.deleteOne, [application, key]).affected > 0 else {
                return false
            }
            self.logChange(key, .forgotten, connection)
            return true
        }
    }

    /// The row is compared opened, by the generation it was read at, under its lock.
    package func markNeedsReauth(_ key: String, rejectedRefreshToken: String) async throws(StoreError) -> Bool {
        let (application, sealer) = (self.application, self.sealer)
        return try await pool.transaction { connection throws(PostgreSQLFailure) in
            guard let values = try connection.execute(PostgreSQLTokenRows.lockOne, [application, key]).rows.first
            else { return false }
            let row = try PostgreSQLTokenRows.row(values, sealer).token
            guard row.refreshToken == rejectedRefreshToken else { return false }
            let marked = try connection.execute(
                PostgreSQLTokenRows.markNeedsReauth,
                [application, key, "\(row.generation)", PostgreSQLTokenRows.seconds(Date())])
            guard marked.affected > 0 else { return false }
            self.logChange(key, .reauthRequired, connection)
            return true
        }
    }

    package func keysWithRefreshExpiringBefore(_ date: Date, limit: Int) async throws(StoreError) -> [String] {
        let application = self.application
        return try await pool.read { connection throws(PostgreSQLFailure) in
            try connection.execute(
                PostgreSQLTokenRows.refreshExpiringBefore,
                [application, PostgreSQLTokenRows.seconds(date), "\(max(limit, 0))"]
            ).rows.compactMap { $0[0] }
        }
    }

    package func latestChange() async throws(StoreError) -> Int64 {
        try await pool.read { connection throws(PostgreSQLFailure) in try PostgreSQLChangeRows.latest(connection) }
    }

    package func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> ChangeBatch {
        let application = self.application
        return try await pool.read { connection throws(PostgreSQLFailure) in
            try PostgreSQLChangeRows.after(sequence, limit: limit, application, connection).batch
        }
    }

    package func changeFollower(after sequence: Int64) async throws(StoreError) -> any ChangeFollower {
        PostgreSQLChangeFollower(store: self, listener: listener, after: sequence)
    }

    package func bulkInsertForBenchmark(_ tokens: [StoredToken]) async throws(StoreError) {
        let (application, sealer) = (self.application, self.sealer)
        try await pool.transaction { connection throws(PostgreSQLFailure) in
            for token in tokens {
                try connection.execute(
                    PostgreSQLTokenRows.insertAsGiven,
                    try PostgreSQLTokenRows.insertAsGivenParameters(token, application, sealer))
            }
        }
    }

    /// Waits for calls already running, then closes the connections and stops the listener.
    package func close() async {
        await pool.close()
        listener.stop()
    }

    /// Upserts new tokens (generation + 1, needs_reauth and the lease cleared), sealed for that generation; the row
    /// as written. Refuses (`.wrongKey`) when another agent re-sealed the application's rows under another key since
    /// this one opened the store (a rotation): values sealed under the old key would open for no one.
    func writeNewTokens(
        _ token: StoredToken, lastRefreshedAt: Date?, keep: Bool, _ connection: PostgreSQLConnection
    ) throws(PostgreSQLFailure) -> StoredToken {
        for _ in 0..<2 {
            let locked = try connection.execute(PostgreSQLTokenRows.lockForWrite, [application, token.key]).rows.first
            if let sealer, locked?[1] != sealer.fingerprint {
                throw PostgreSQLFailure(
                    StoreError(
                        .wrongKey,
                        "the store's tokens of application \(application) were re-sealed under another client secret or store key since this agent started; restart it with the new one"
                    ))
            }
            let generation = (locked?[0].flatMap { Int64($0) } ?? 0) + 1
            let parameters = try PostgreSQLTokenRows.upsertParameters(
                token, application, generation: generation, lastRefreshedAt: lastRefreshedAt, keepConnectOptions: keep,
                sealer)
            if let row = try connection.execute(PostgreSQLTokenRows.upsert, parameters).rows.first {
                return try PostgreSQLTokenRows.row(row, sealer).token
            }
        }
        throw PostgreSQLFailure(
            message: "the key '\(token.key)' kept changing while it was saved", connectionLost: false)
    }

    func logChange(_ key: String, _ kind: ChangeKind, _ connection: PostgreSQLConnection) {
        PostgreSQLChangeRows.append(
            key, application, kind: kind, origin: origin, capacity: changeLogCapacity, channel: channel, connection)
    }
}
