import CSQLite

/// SQLite's extended result code and message for a failed call.
struct SQLiteError: Error {
    let code: Int32
    let message: String

    var primaryCode: Int32 { code & 0xFF }
    var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }
    var isCorruption: Bool { primaryCode == SQLITE_CORRUPT || primaryCode == SQLITE_NOTADB }

    /// A store error for `action` ("could not save key 'k'"): corruption, busy or plain I/O.
    func storeError(_ action: String) -> StoreError {
        let detail = "\(action): \(message) (SQLite code \(code))"
        if isBusy { return StoreError(.busy, detail + "; another process kept the store locked, try again") }
        if isCorruption { return StoreError(.corrupt, detail) }
        return StoreError(.io, detail)
    }
}

/// A thin owner of one `sqlite3*` and its cached prepared statements.
///
/// Not thread-safe and not Sendable: exactly one thread or serial queue may use it at a time
/// (the connection is opened without SQLite's own mutex).
final class SQLiteConnection {
    private var db: OpaquePointer?
    private var cache: [String: Statement] = [:]
    /// How this database's token columns are sealed for the store's application (nil: unsealed, no secret was
    /// given). Set once at open (`SQLiteSealing.prepare`), before the connection is shared.
    var sealer: TokenSealer?

    init(path: String, flags: Int32) throws(SQLiteError) {
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(handle)
            throw SQLiteError(code: rc, message: message)
        }
        db = handle
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit { close() }

    var isOpen: Bool { db != nil }

    /// Whether an explicit transaction is open (SQLite rolls one back by itself after some errors).
    var isInTransaction: Bool { db.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { db.map { Int(sqlite3_changes($0)) } ?? 0 }

    /// Whether the file SQLite has open is no longer the one at its path (deleted, renamed or replaced):
    /// SQLite's own check (`SQLITE_FCNTL_HAS_MOVED`, one `stat`). True when it cannot tell.
    var fileHasMoved: Bool {
        guard let db else { return true }
        var moved: Int32 = 0
        guard sqlite3_file_control(db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK else { return true }
        return moved != 0
    }

    /// Makes `close` leave the `-wal` and `-shm` files where they are: SQLite deletes them by name, and once
    /// the database file was replaced those names may belong to the file now at the path.
    func keepWALFilesOnClose() {
        guard let db else { return }
        var persist: Int32 = 1
        sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
    }

    func setBusyTimeout(milliseconds: Int32) {
        if let db { sqlite3_busy_timeout(db, milliseconds) }
    }

    /// Runs statements that return no rows we need (DDL, BEGIN/COMMIT, PRAGMAs that set).
    func execute(_ sql: String) throws(SQLiteError) {
        let db = try handle()
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        defer { sqlite3_free(errorMessage) }
        if rc != SQLITE_OK {
            throw SQLiteError(
                code: sqlite3_extended_errcode(db),
                message: errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc)))
        }
    }

    /// The cached prepared statement for `sql`, reset and with no bindings. Callers reset it again when
    /// done (`defer { statement.reset() }`) so no read transaction stays open.
    func prepared(_ sql: String) throws(SQLiteError) -> Statement {
        if let cached = cache[sql] { return cached }
        let db = try handle()
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else { throw lastError(db) }
        let statement = Statement(raw)
        cache[sql] = statement
        return statement
    }

    /// The first column of every row of `sql`, as text (NULL as ""), without caching the statement.
    /// For the few schema and PRAGMA queries run at open.
    func firstColumn(_ sql: String) throws(SQLiteError) -> [String] {
        let db = try handle()
        var raw: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &raw, nil) == SQLITE_OK, let raw else { throw lastError(db) }
        let statement = Statement(raw)
        defer { statement.finalize() }
        var values: [String] = []
        while try statement.step() { values.append(statement.text(0)) }
        return values
    }

    /// Finalizes every statement and closes the handle. Safe to call twice.
    func close() {
        for statement in cache.values { statement.finalize() }
        cache = [:]
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    private func handle() throws(SQLiteError) -> OpaquePointer {
        guard let db else { throw SQLiteError(code: SQLITE_MISUSE, message: "connection is closed") }
        return db
    }

    private func lastError(_ db: OpaquePointer) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(db), message: String(cString: sqlite3_errmsg(db)))
    }
}

/// One prepared statement: bind by 1-based index, step, read columns by 0-based index.
final class Statement {
    private var raw: OpaquePointer?

    init(_ raw: OpaquePointer) { self.raw = raw }

    /// Tells SQLite to copy bound text (the Swift buffer does not outlive the call).
    private static var transient: sqlite3_destructor_type { unsafeBitCast(-1, to: sqlite3_destructor_type.self) }

    func bind(_ index: Int32, _ value: String?) {
        guard var text = value else { sqlite3_bind_null(raw, index); return }
        text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                if let base = chars.baseAddress {
                    _ = sqlite3_bind_text(raw, index, base, Int32(chars.count), Self.transient)
                } else {
                    _ = sqlite3_bind_text(raw, index, "", 0, Self.transient)
                }
            }
        }
    }

    func bind(_ index: Int32, _ value: Double?) {
        if let value { sqlite3_bind_double(raw, index, value) } else { sqlite3_bind_null(raw, index) }
    }

    func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(raw, index, value) }

    func bind(_ index: Int32, blob value: [UInt8]) {
        value.withUnsafeBytes { bytes in
            _ = sqlite3_bind_blob(
                raw, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count), Self.transient)
        }
    }

    /// Advances one row: true when a row is available, false when done.
    func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(raw)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let db = sqlite3_db_handle(raw)
        throw SQLiteError(code: sqlite3_extended_errcode(db), message: String(cString: sqlite3_errmsg(db)))
    }

    /// Steps a statement that returns no rows.
    func run() throws(SQLiteError) { while try step() {} }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(raw, column) == SQLITE_NULL }
    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(raw, column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(raw, column) }
    func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }
    func text(_ column: Int32) -> String { optionalText(column) ?? "" }
    func isBlob(_ column: Int32) -> Bool { sqlite3_column_type(raw, column) == SQLITE_BLOB }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(raw, column))
        guard let bytes = sqlite3_column_blob(raw, column), count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }

    func optionalText(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(raw, column) else { return nil }
        let count = Int(sqlite3_column_bytes(raw, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// Ends the current execution (releasing its read lock) and clears the bindings for the next use.
    func reset() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    func finalize() {
        sqlite3_finalize(raw)
        raw = nil
    }
}
