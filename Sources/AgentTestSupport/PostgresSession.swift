import CLibPQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A harness's own blocking libpq connection to a test database: reads the agents' rows as text and holds
/// locks in an open transaction, beside (never through) the store under test. One thread at a time.
package final class PostgresSession {
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    private var connection: OpaquePointer?

    /// Connects to `uri` (a libpq URI, as `PostgresCluster.createDatabase` returns).
    package init(_ uri: String) throws(Failure) {
        let connection = PQconnectdb(uri)
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = connection.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(connection)
            throw Failure(description: "cannot connect to the test database: \(message)")
        }
        self.connection = connection
    }

    deinit { close() }

    /// Runs `sql` with its `$1`, `$2`… bound to `parameters` (text); answers the rows, each column as text
    /// (nil: NULL).
    @discardableResult
    package func query(_ sql: String, _ parameters: [String] = []) throws(Failure) -> [[String?]] {
        guard let connection else { throw Failure(description: "the test connection is closed") }
        let result = withCStrings(parameters) { pointers in
            PQexecParams(connection, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            throw Failure(description: "\(sql.prefix(60))…: \(String(cString: PQerrorMessage(connection)))")
        }
        return (0..<PQntuples(result)).map { row in
            (0..<PQnfields(result)).map { column in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            }
        }
    }

    /// Begins a transaction holding every table of `schema` in `EXCLUSIVE` mode until `rollback()`: reads go
    /// on, every write waits (an agent's fails once its lock timeout passes), as under SQLite's exclusive lock.
    package func lockTables(ofSchema schema: String) throws(Failure) {
        let tables = try query("SELECT tablename FROM pg_tables WHERE schemaname = $1", [schema]).compactMap { $0[0] }
        guard !tables.isEmpty else { throw Failure(description: "the schema \(schema) has no tables") }
        try query("BEGIN")
        do {
            try query(
                "LOCK TABLE \(tables.map { Self.quoted(schema) + "." + Self.quoted($0) }.joined(separator: ", ")) IN EXCLUSIVE MODE"
            )
        } catch {
            rollback()
            throw error
        }
    }

    /// Ends the open transaction (and the locks it holds), if any.
    package func rollback() { _ = try? query("ROLLBACK") }

    package func close() {
        PQfinish(connection)
        connection = nil
    }

    /// `identifier` quoted for SQL.
    package static func quoted(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private func withCStrings<T>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> T) -> T {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        return body(copies.map { UnsafePointer($0) })
    }
}
