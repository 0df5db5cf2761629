import AgentSupport
import Foundation

/// The durable token store: one SQLite database shared by every agent process of this user.
///
/// Durability is the point: Smartcar invalidates a refresh token once it is used, so a rotated refresh
/// token that is not on disk is lost for good. Every write has been committed with `synchronous=FULL`
/// (fsync) when its method returns. Processes coordinate refreshes through leases (see `acquireLease`).
///
/// All SQLite work runs on the store's own serial queue; the async methods never block the cooperative
/// pool. Methods are not cancellable: a write that has been handed to the store completes.
package final class TokenStore: Sendable {
    /// Where this store lives (for messages such as the agent's start-up line).
    package let location: StoreLocation
    let queue: StoreQueue
    let logger: Logger

    private init(location: StoreLocation, queue: StoreQueue, logger: Logger) {
        self.location = location
        self.queue = queue
        self.logger = logger
    }

    /// Opens or creates the store: folder 0700, file 0600 whatever the umask; refuses (`.permissions`) a
    /// file or folder other users can read or write or that another user owns; WAL, `synchronous=FULL`,
    /// busy timeout, schema version and migrations.
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
        strict: Bool = false,
        busyTimeout: Duration = .seconds(5),
        logger: Logger = .silent
    ) throws(StoreError) -> TokenStore {
        let milliseconds =
            busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000
        let opener = StoreOpener(strict: strict, busyTimeoutMilliseconds: Int32(clamping: milliseconds), logger: logger)
        let (connection, identity) = try opener.open(location)
        switch location {
        case .file(let path):
            let watch = identity.map { identity in
                StoreFileWatch(path: path, identity: identity, logger: logger) { () throws(StoreError) in
                    try opener.openFile(path)
                }
            }
            let queue = StoreQueue(connection: connection, label: "TokenStore \(path)", watch: watch)
            return TokenStore(location: location, queue: queue, logger: logger)
        case .memory:
            let queue = StoreQueue(connection: connection, label: "TokenStore memory")
            return TokenStore(location: location, queue: queue, logger: logger)
        }
    }

    /// The row for `key`, or nil if the store never held it (or it was deleted).
    package func load(_ key: String) async throws(StoreError) -> StoredToken? {
        try await queue.read { connection throws(StoreError) in try TokenRows.load(key, connection)?.token }
    }

    /// Every row, ordered by key.
    package func list() async throws(StoreError) -> [StoredToken] {
        try await queue.read { connection throws(StoreError) in try TokenRows.list(connection) }
    }

    /// How many keys the store holds.
    package func count() async throws(StoreError) -> Int {
        try await queue.read { connection throws(StoreError) in try TokenRows.count(connection) }
    }

    /// Inserts or replaces the row for `token.key` with a new generation (1 for a new key), clearing
    /// `needsReauth` and any lease; durably committed when this returns. `token.generation` is ignored.
    /// Returns the row as written.
    @discardableResult
    package func save(_ token: StoredToken) async throws(StoreError) -> StoredToken {
        try await queue.write { connection throws(StoreError) in
            try TokenRows.writeNewTokens(token, lastRefreshedAt: token.lastRefreshedAt, connection)
        }
    }

    /// Removes the row; answers whether there was one.
    @discardableResult
    package func delete(_ key: String) async throws(StoreError) -> Bool {
        try await queue.write { connection throws(StoreError) in try TokenRows.delete(key, connection) }
    }

    /// Marks the key as needing Connect again, but only if its stored refresh token is still
    /// `rejectedRefreshToken`: another process may have rotated it meanwhile, and the new one is fine.
    /// Answers whether it marked the row. Leaves any lease alone (release it with `releaseLease`).
    @discardableResult
    package func markNeedsReauth(_ key: String, rejectedRefreshToken: String) async throws(StoreError) -> Bool {
        try await queue.write { connection throws(StoreError) in
            try TokenRows.markNeedsReauth(key, rejectedRefreshToken: rejectedRefreshToken, connection)
        }
    }

    /// Keys whose refresh token ends before `date`, soonest first, at most `limit` (for refreshing idle
    /// keys in the background before their refresh token dies). Rows needing Connect again are skipped.
    package func keysWithRefreshExpiringBefore(_ date: Date, limit: Int) async throws(StoreError) -> [String] {
        try await queue.read { connection throws(StoreError) in
            try TokenRows.keysWithRefreshExpiringBefore(date, limit: limit, connection)
        }
    }

    /// Inserts or replaces `tokens` in one transaction, keeping each `generation` and `needsReauth` as
    /// given. Only for building large stores fast in benchmarks and tests; the agent never calls it.
    /// Pass chunks (say 50,000 rows) for very large stores to bound memory.
    package func bulkInsertForBenchmark(_ tokens: [StoredToken]) async throws(StoreError) {
        try await queue.write { connection throws(StoreError) in try TokenRows.insertAsGiven(tokens, connection) }
    }

    /// Finishes the work already handed to the store, then closes the database (checkpointing the WAL
    /// when this is the last connection). Later calls throw `.closed`.
    package func close() async {
        await queue.close()
    }
}
