import AgentTestSupport
import CSQLite
import Foundation
import TokenStore
import WireFormats

/// The store probe of a SQLite file with a `tokens` table (`key`, `access_token`, `refresh_token`,
/// `expires_at`, `generation`, `needs_reauth`, ...).
final class SQLiteStoreProbe: StoreProbe {
    typealias Failure = StoreProbeFailure

    private var db: OpaquePointer?
    private var locked = false
    private let clientSecret: String?

    init(path: String, clientSecret: String?) throws(Failure) {
        self.clientSecret = clientSecret
        guard FileManager.default.fileExists(atPath: path) else {
            throw Failure(description: "there is no store file at \(path)")
        }
        do { db = try RawSQLite.open(path, busyTimeoutMilliseconds: 5000) } catch {
            throw Failure(description: error.description)
        }
    }

    deinit { close() }

    func row(_ key: String) throws(Failure) -> JSONValue? {
        var statement: OpaquePointer?
        let sql =
            "SELECT key, access_token, refresh_token, expires_at, generation, needs_reauth, application FROM tokens WHERE key = ?"
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else {
            throw lastError("cannot read the store")
        }
        defer { sqlite3_finalize(statement) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        sqlite3_bind_text(statement, 1, key, -1, transient)
        switch sqlite3_step(statement) {
        case SQLITE_ROW:
            let expiresAt = Date(timeIntervalSince1970: sqlite3_column_double(statement, 3))
            let (key, generation, application) = (
                text(statement, 0), sqlite3_column_int64(statement, 4), text(statement, 6)
            )
            func token(_ column: Int32, _ name: TokenSealer.Column) throws(Failure) -> String {
                guard let db else { throw Failure(description: "the store probe is closed") }
                do {
                    return try SQLiteSealedColumns(db: db, clientSecret: clientSecret).value(
                        statement!, column, name: name, key: key, application: application, generation: generation)
                } catch {
                    throw Failure(description: error.description)
                }
            }
            return .object([
                "key": .string(key),
                "accessToken": .string(try token(1, .accessToken)),
                "refreshToken": .string(try token(2, .refreshToken)),
                "expiresAt": .string(expiresAt.formatted(.iso8601)),
                "generation": .int(sqlite3_column_int64(statement, 4)),
                "needsReauth": .bool(sqlite3_column_int64(statement, 5) != 0),
            ])
        case SQLITE_DONE:
            return nil
        default:
            throw lastError("cannot read the store")
        }
    }

    /// Takes SQLite's exclusive lock on the store and keeps it until `close()`.
    func lock() throws(Failure) {
        guard sqlite3_exec(db, "BEGIN EXCLUSIVE", nil, nil, nil) == SQLITE_OK else {
            throw lastError("cannot lock the store")
        }
        locked = true
    }

    private func unlock() {
        if locked { sqlite3_exec(db, "ROLLBACK", nil, nil, nil) }
        locked = false
    }

    func close() {
        unlock()
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    private func text(_ statement: OpaquePointer?, _ column: Int32) -> String {
        sqlite3_column_text(statement, column).map { String(cString: $0) } ?? ""
    }

    private func lastError(_ what: String) -> Failure {
        Failure(description: "\(what): \(db.map { String(cString: sqlite3_errmsg($0)) } ?? "closed")")
    }
}
