import AgentSupport
import Foundation

/// The token store in one SQLite database shared by every agent process of this user (or in memory).
///
/// Durability is the point: Smartcar invalidates a refresh token once it is used, so a rotated refresh
/// token that is not on disk is lost for good. Every write has been committed with `synchronous=FULL`
/// (fsync) when its method returns. Processes coordinate refreshes through leases (see `acquireLease`).
///
/// All SQLite work runs on the store's own serial queue; the async methods never block the cooperative
/// pool. Methods are not cancellable: a write that has been handed to the store completes.
package final class SQLiteTokenStore: TokenStore {
    /// Where this store lives (for messages such as the agent's start-up line).
    package let location: StoreLocation
    package let application: String
    package let origin: String
    /// How the application's tokens are sealed in this store, for `status`: the cipher and where the key comes
    /// from, or "none".
    package let sealing: String
    let changeLogCapacity: Int
    let queue: StoreQueue
    let logger: Logger
    private let busyTimeoutMilliseconds: Int32

    private init(
        location: StoreLocation, application: String, origin: String, sealing: String, changeLogCapacity: Int,
        queue: StoreQueue, busyTimeoutMilliseconds: Int32, logger: Logger
    ) {
        self.location = location
        self.sealing = sealing
        self.application = application
        self.origin = origin
        self.changeLogCapacity = changeLogCapacity
        self.queue = queue
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.logger = logger
    }

    /// Opens or creates the store for `application`: folder 0700, file 0600 whatever the umask; refuses
    /// (`.permissions`) a file or folder other users can read or write or that another user owns; WAL,
    /// `synchronous=FULL`, busy timeout, schema version and migrations, then the claim of rows written before rows
    /// had an application (`Schema.claimUnboundRows`). `origin` names this store's changes in the change log; the
    /// log keeps the newest `changeLogCapacity` entries.
    ///
    /// A file that is not a valid store (garbage, truncated, another program's database, a newer schema)
    /// is never overwritten: it is moved aside to `<name>.corrupt-<UTC yyyyMMdd'T'HHmmss'Z'>` (with its
    /// `-wal`/`-shm`), an error is logged and an empty store is created. With `strict` it throws
    /// `.corrupt` / `.futureSchema` instead and leaves the file alone.
    ///
    /// Blocking (file checks, a lock against other agents opening the same store, SQLite recovery; about
    /// 1–2 ms for a 100,000-key store): call it at start-up, e.g. from `main`, not from the cooperative pool.
    package static func open(
        _ location: StoreLocation,
        application: String,
        origin: String = "pid \(ProcessInfo.processInfo.processIdentifier)",
        strict: Bool = false,
        sealing secrets: StoreSecrets? = nil,
        busyTimeout: Duration = .seconds(5),
        changeLogCapacity: Int = defaultChangeLogCapacity,
        logger: Logger = .silent
    ) throws(StoreError) -> SQLiteTokenStore {
        let milliseconds = Int32(
            clamping: busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds
                / 1_000_000_000_000_000)
        let opener = StoreOpener(
            strict: strict, busyTimeoutMilliseconds: milliseconds, application: application, secrets: secrets,
            logger: logger)
        let (connection, identity) = try opener.open(location)
        let sealing = TokenSealer.modeDescription(connection.sealer)
        let queue: StoreQueue
        switch location {
        case .file(let path):
            let watch = identity.map { identity in
                StoreFileWatch(path: path, identity: identity, logger: logger) { () throws(StoreError) in
                    try opener.openFile(path)
                }
            }
            queue = StoreQueue(connection: connection, label: "TokenStore \(path)", watch: watch)
        case .memory, .postgres:  // the opener refused a PostgreSQL location
            queue = StoreQueue(connection: connection, label: "TokenStore memory")
        }
        return SQLiteTokenStore(
            location: location, application: application, origin: origin, sealing: sealing,
            changeLogCapacity: max(changeLogCapacity, 1), queue: queue, busyTimeoutMilliseconds: milliseconds,
            logger: logger)
    }

    package func load(_ key: String) async throws(StoreError) -> StoredToken? {
        let application = self.application
        return try await queue.read { connection throws(StoreError) in
            try TokenRows.load(key, application, connection)?.token
        }
    }

    package func lookup(_ key: String) async throws(StoreError) -> KeyLookup {
        let application = self.application
        return try await queue.read { connection throws(StoreError) in
            if let row = try TokenRows.load(key, application, connection) { return .found(row.token) }
            return try TokenRows.existsElsewhere(key, application, connection) ? .otherApplication : .unknown
        }
    }

    package func list() async throws(StoreError) -> [StoredToken] {
        let (application, logger) = (self.application, self.logger)
        return try await queue.read { connection throws(StoreError) in
            let (tokens, unopenable) = try TokenRows.list(application, connection)
            for key in unopenable {
                logger.error(
                    "key '\(key)': its sealed tokens do not open (altered, or moved from another row); left out of the list"
                )
            }
            return tokens
        }
    }

    package func count() async throws(StoreError) -> Int {
        let application = self.application
        return try await queue.read { connection throws(StoreError) in try TokenRows.count(application, connection) }
    }

    package func save(_ token: StoredToken, kind: ChangeKind) async throws(StoreError) -> StoredToken {
        let (application, origin, capacity) = (self.application, self.origin, changeLogCapacity)
        return try await queue.write { connection throws(StoreError) in
            let written = try TokenRows.writeNewTokens(
                token, application, lastRefreshedAt: token.lastRefreshedAt, keepConnectOptions: false, connection)
            try ChangeRows.append(token.key, application, kind: kind, origin: origin, capacity: capacity, connection)
            return written
        }
    }

    package func save(
        _ token: StoredToken, kind: ChangeKind, unlessChangedAfter sequence: Int64
    ) async throws(StoreError) -> FencedSave {
        let (application, origin, capacity) = (self.application, self.origin, changeLogCapacity)
        return try await queue.write { connection throws(StoreError) -> FencedSave in
            if try ChangeRows.keyChanged(token.key, application, after: sequence, connection) { return .superseded }
            let written = try TokenRows.writeNewTokens(
                token, application, lastRefreshedAt: token.lastRefreshedAt, keepConnectOptions: false, connection)
            try ChangeRows.append(token.key, application, kind: kind, origin: origin, capacity: capacity, connection)
            return .saved(written)
        }
    }

    package func delete(_ key: String) async throws(StoreError) -> Bool {
        let (application, origin, capacity) = (self.application, self.origin, changeLogCapacity)
        let deleted = try await queue.write { connection throws(StoreError) in
            guard try TokenRows.delete(key, application, connection) else { return false }
            try ChangeRows.append(key, application, kind: .forgotten, origin: origin, capacity: capacity, connection)
            return true
        }
        if deleted { await truncateWAL() }
        return deleted
    }

    /// Copies the WAL into the database and empties it, so the frames that held a forgotten key's tokens are gone
    /// (`secure_delete` zeroes the row in the database itself). Waits at most a moment for other agents' readers;
    /// if they keep it from finishing, the log says so and the frames go at a later checkpoint.
    private func truncateWAL() async {
        guard case .file(let path) = location else { return }
        let (logger, busyTimeout) = (self.logger, busyTimeoutMilliseconds)
        _ = try? await queue.read { connection throws(StoreError) in
            connection.setBusyTimeout(milliseconds: 200)
            defer { connection.setBusyTimeout(milliseconds: busyTimeout) }
            let result = try? connection.firstColumn("PRAGMA wal_checkpoint(TRUNCATE)")
            if result?.first != "0" {
                logger.notice(
                    "token store \(path): other agents kept the WAL from being emptied after a forget; the forgotten key's sealed tokens stay in it until a later checkpoint"
                )
            }
        }
    }

    package func markNeedsReauth(_ key: String, rejectedRefreshToken: String) async throws(StoreError) -> Bool {
        let (application, origin, capacity) = (self.application, self.origin, changeLogCapacity)
        return try await queue.write { connection throws(StoreError) in
            guard
                try TokenRows.markNeedsReauth(key, application, rejectedRefreshToken: rejectedRefreshToken, connection)
            else { return false }
            try ChangeRows.append(
                key, application, kind: .reauthRequired, origin: origin, capacity: capacity, connection)
            return true
        }
    }

    package func keysWithRefreshExpiringBefore(_ date: Date, limit: Int) async throws(StoreError) -> [String] {
        let application = self.application
        return try await queue.read { connection throws(StoreError) in
            try TokenRows.keysWithRefreshExpiringBefore(date, limit: limit, application, connection)
        }
    }

    package func issueState(_ state: ConnectState, capacity: Int, now: Date) async throws(StoreError) {
        let application = self.application
        try await queue.write { connection throws(StoreError) in
            try StateRows.issue(state, capacity: capacity, now: now, application, connection)
        }
    }

    package func consumeState(_ state: String, now: Date) async throws(StoreError) -> StateClaim {
        let application = self.application
        return try await queue.write { connection throws(StoreError) in
            try StateRows.consume(state, now: now, application, connection)
        }
    }

    package func pruneStates(now: Date) async throws(StoreError) -> Int {
        try await queue.write { connection throws(StoreError) in try StateRows.prune(now: now, connection) }
    }

    package func latestChange() async throws(StoreError) -> Int64 {
        try await queue.read { connection throws(StoreError) in try ChangeRows.latest(connection) }
    }

    package func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> ChangeBatch {
        let application = self.application
        return try await queue.read { connection throws(StoreError) in
            try ChangeRows.after(sequence, limit: limit, application, connection)
        }
    }

    /// On a file: a follower with its own read-only connection and thread, so polls never wait behind this
    /// store's writes and `PRAGMA data_version` sees every commit (this process's included). In memory, the
    /// follower reads through this store's queue and compares the newest sequence instead.
    package func changeFollower(after sequence: Int64) async throws(StoreError) -> any ChangeFollower {
        switch location {
        case .file(let path):
            return try SQLiteChangeFollower(
                path: path, application: application, after: sequence,
                busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        case .memory, .postgres:
            return PollingChangeFollower(store: self, after: sequence)
        }
    }

    package func bulkInsertForBenchmark(_ tokens: [StoredToken]) async throws(StoreError) {
        let application = self.application
        try await queue.write { connection throws(StoreError) in
            try TokenRows.insertAsGiven(tokens, application, connection)
        }
    }

    /// Finishes the work already handed to the store, then closes the database (checkpointing the WAL
    /// when this is the last connection). Later calls throw `.closed`.
    package func close() async {
        await queue.close()
    }
}
