import AgentTestSupport
import CSQLite
import Foundation

/// The store inspector of a SQLite file: its lock is SQLite's exclusive lock.
final class SQLiteStoreInspector: StoreInspector {
    typealias Failure = StoreInspectorFailure

    private var db: OpaquePointer?
    private(set) var locked = false
    private let clientSecret: String

    /// `clientSecret`: the agents' one, which opens the sealed token values.
    init(path: String, clientSecret: String) throws(Failure) {
        self.clientSecret = clientSecret
        do { db = try RawSQLite.open(path, busyTimeoutMilliseconds: 30_000) } catch {
            throw Failure(description: error.description)
        }
    }

    deinit { close() }

    func rows() throws(Failure) -> [ModelKey: InspectedRow] {
        var statement: OpaquePointer?
        guard let db else { throw Failure(description: "the store inspector is closed") }
        let columns = SQLiteSealedColumns(db: db, clientSecret: clientSecret)
        let sql = "SELECT key, access_token, refresh_token, needs_reauth, application, generation FROM tokens"
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { throw lastError("cannot read") }
        defer { sqlite3_finalize(statement) }
        var rows: [ModelKey: InspectedRow] = [:]
        while true {
            switch sqlite3_step(statement) {
            case SQLITE_ROW:
                let key = ModelKey(bytes: bytes(statement, 0))
                let (name, application) = (
                    String(decoding: key.bytes, as: UTF8.self), String(decoding: bytes(statement, 4), as: UTF8.self)
                )
                let generation = sqlite3_column_int64(statement, 5)
                do {
                    rows[key] = InspectedRow(
                        key: key,
                        accessToken: try columns.value(
                            statement!, 1, name: .accessToken, key: name, application: application,
                            generation: generation),
                        refreshToken: try columns.value(
                            statement!, 2, name: .refreshToken, key: name, application: application,
                            generation: generation),
                        needsReauth: sqlite3_column_int64(statement, 3) != 0)
                } catch {
                    throw Failure(description: error.description)
                }
            case SQLITE_DONE:
                return rows
            default:
                throw lastError("cannot read")
            }
        }
    }

    func lock() throws(Failure) {
        guard sqlite3_exec(db, "BEGIN EXCLUSIVE", nil, nil, nil) == SQLITE_OK else { throw lastError("cannot lock") }
        locked = true
    }

    func unlock() {
        if locked { sqlite3_exec(db, "ROLLBACK", nil, nil, nil) }
        locked = false
    }

    func close() {
        unlock()
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    private func bytes(_ statement: OpaquePointer?, _ column: Int32) -> [UInt8] {
        guard let text = sqlite3_column_text(statement, column) else { return [] }
        return Array(UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(statement, column))))
    }

    private func lastError(_ what: String) -> Failure {
        Failure(description: "\(what) the store: \(db.map { String(cString: sqlite3_errmsg($0)) } ?? "closed")")
    }
}
