import CSQLite

/// A harness's own connection to an agent's SQLite store (the transcript probe, the model suite's inspector),
/// apart from the store's code: what the harness reads is what is in the file.
package enum RawSQLite {
    /// Opens `path` read-write (never creating it), waiting up to `busyTimeoutMilliseconds` for the agents' locks.
    /// Throws the text of SQLite's error.
    package static func open(_ path: String, busyTimeoutMilliseconds: Int32) throws(RawSQLiteError) -> OpaquePointer {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(handle)
            throw RawSQLiteError(description: "cannot open the store \(path): \(message)")
        }
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        return handle
    }
}

package struct RawSQLiteError: Error, CustomStringConvertible {
    package var description: String
}
