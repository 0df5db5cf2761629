import CSQLite
import Sealing
import TokenStore

/// Reads a token column of a SQLite store through a harness's own raw connection (transcript probes, the model
/// suite's inspector): plain text as it is, a sealed value opened with the key the agents' client secret gives
/// for the row's application, from the store's id and salt.
package struct SQLiteSealedColumns {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    private let db: OpaquePointer
    private let clientSecret: String?

    package init(db: OpaquePointer, clientSecret: String?) {
        self.db = db
        self.clientSecret = clientSecret
    }

    /// Column `column` of the current row of `statement`, the `name` column of `key`'s row at `generation`.
    package func value(
        _ statement: OpaquePointer, _ column: Int32, name: TokenSealer.Column, key: String, application: String,
        generation: Int64
    ) throws(Failure) -> String {
        guard sqlite3_column_type(statement, column) == SQLITE_BLOB else {
            return sqlite3_column_text(statement, column).map {
                String(
                    decoding: UnsafeBufferPointer(start: $0, count: Int(sqlite3_column_bytes(statement, column))),
                    as: UTF8.self)
            } ?? ""
        }
        let sealed = Self.blob(statement, column)
        do {
            return try sealer(application).open(sealed, key: key, column: name, generation: generation)
        } catch {
            throw Failure(description: "cannot open the stored \(name.rawValue) of \(key): \(error)")
        }
    }

    private func sealer(_ application: String) throws(Failure) -> TokenSealer {
        guard let clientSecret else {
            throw Failure(description: "the store's tokens are sealed, and no agent was given SMARTCAR_CLIENT_SECRET")
        }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, "SELECT store_id, sealing_salt FROM store_meta", -1, &statement, nil) == SQLITE_OK
        else { throw Failure(description: "cannot read the store's id and salt") }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW, let id = sqlite3_column_text(statement, 0) else {
            throw Failure(description: "the store has no id and salt")
        }
        do {
            return try TokenSealer(
                secret: .clientSecret(SecretBytes(Array(clientSecret.utf8))), storeID: String(cString: id),
                salt: Self.blob(statement, 1), application: application)
        } catch {
            throw Failure(description: "cannot derive the store's sealing key: \(error)")
        }
    }

    private static func blob(_ statement: OpaquePointer?, _ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        return sqlite3_column_blob(statement, column).map { Array(UnsafeRawBufferPointer(start: $0, count: count)) }
            ?? []
    }
}
