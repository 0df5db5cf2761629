import CSQLite
import Synchronization

/// One agent's follower of a SQLite store file: its own connection on its own serial queue (a `StoreQueue` it
/// only reads through). `PRAGMA data_version` changes when any other connection, in this process or another,
/// commits: while it does not, `poll()` reads nothing else. When it does, the newest sequence and the batch are
/// read in one read transaction.
///
/// It follows the file it opened: if the store file is replaced under the agent, it keeps reading the old one
/// (the store's `StoreFileWatch` handles the replacement for the store itself).
final class SQLiteChangeFollower: ChangeFollower {
    private let queue: StoreQueue
    private let application: String
    private let state: Mutex<(position: FollowerPosition, dataVersion: Int64?)>

    init(path: String, application: String, after sequence: Int64, busyTimeoutMilliseconds: Int32) throws(StoreError) {
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READWRITE)
        } catch {
            throw error.storeError("could not open the token store \(path) to follow its changes")
        }
        connection.setBusyTimeout(milliseconds: busyTimeoutMilliseconds)
        self.queue = StoreQueue(connection: connection, label: "TokenStore changes \(path)")
        self.application = application
        self.state = Mutex((FollowerPosition(sequence: sequence), nil))
    }

    func poll() async throws(StoreError) -> ChangeBatch {
        return try await queue.read { connection throws(StoreError) in
            let version = try TokenRows.sqlite("could not check the token store for changes") {
                () throws(SQLiteError) in
                let statement = try connection.prepared("PRAGMA data_version")
                defer { statement.reset() }
                return try statement.step() ? statement.int64(0) : 0
            }
            let current = self.state.withLock { $0 }
            if current.dataVersion == version, !current.position.moreWaiting { return .changes([]) }
            let (latest, batch) = try Self.snapshot(after: current.position.sequence, self.application, connection)
            return self.state.withLock { state in
                state.dataVersion = version
                return state.position.apply(batch, latest: latest)
            }
        }
    }

    func close() async { await queue.close() }

    /// The newest sequence and the batch after `sequence`, from one consistent read.
    private static func snapshot(
        after sequence: Int64, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) -> (Int64, ChangeBatch) {
        do { try connection.execute("BEGIN") } catch { throw error.storeError("could not read the change log") }
        defer { try? connection.execute("COMMIT") }
        let latest = try ChangeRows.latest(connection)
        return (latest, try ChangeRows.after(sequence, limit: FollowerPosition.batchSize, application, connection))
    }
}
