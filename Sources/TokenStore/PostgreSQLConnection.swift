import CLibPQ
import Foundation

/// One libpq connection, used by one thread at a time (its owner's serial queue or thread). Statements take text
/// parameters and answer text results; a failure says whether the connection is gone.
final class PostgreSQLConnection {
    private let handle: OpaquePointer
    /// A statement the open transaction runs last, sent with its `COMMIT` (see `executeAndCommit`).
    var statementBeforeCommit: (sql: String, parameters: [String?])?

    /// What every connection of the agent is called on the server (`pg_stat_activity.application_name`), so an
    /// operator, or a test, can find them.
    static let applicationName = "smartcar-auth-agent"

    /// Connects (blocking) with libpq's own defaults, `PG*` variables and ~/.pgpass, the URI's settings over the
    /// agent's timeouts, and the agent's application name over the URI's; then `synchronous_commit = on` (a
    /// commit returns once it is durable), `search_path` = `schema`, and `lock_timeout` = `lockTimeout` (a write
    /// that waits that long for a lock fails `.busy`, as SQLite's busy timeout does; nil: wait as long as it takes).
    init(uri: String, schema: String, lockTimeout: Duration? = nil) throws(PostgreSQLFailure) {
        let settings: [(String, String)] = [
            ("connect_timeout", "5"), ("keepalives_idle", "10"), ("keepalives_interval", "3"),
            ("keepalives_count", "3"), ("tcp_user_timeout", "15000"), ("dbname", uri),
            ("application_name", Self.applicationName),
        ]
        let keys = settings.map { strdup($0.0) } + [nil]
        let values = settings.map { strdup($0.1) } + [nil]
        defer { (keys + values).forEach { free($0) } }
        let connected: OpaquePointer? = keys.withUnsafeBufferPointer { keys in
            values.withUnsafeBufferPointer { values in
                keys.withMemoryRebound(to: UnsafePointer<CChar>?.self) { keys in
                    values.withMemoryRebound(to: UnsafePointer<CChar>?.self) { values in
                        PQconnectdbParams(keys.baseAddress, values.baseAddress, 1)
                    }
                }
            }
        }
        guard let connected else { throw PostgreSQLFailure(message: "out of memory", connectionLost: true) }
        // From here a failure that throws runs `deinit`, which closes the handle.
        handle = connected
        // Server messages (such as the FATAL before a terminated session) are not printed: errors report them.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        guard PQstatus(handle) == CONNECTION_OK else {
            throw PostgreSQLFailure(message: Self.text(PQerrorMessage(handle)), connectionLost: true)
        }
        try execute("SET synchronous_commit = on; SET search_path = \(PostgreSQLSchema.quoted(schema))")
        if let lockTimeout {
            let milliseconds =
                lockTimeout.components.seconds * 1000 + lockTimeout.components.attoseconds / 1_000_000_000_000_000
            try execute("SET lock_timeout = \(max(1, milliseconds))")
        }
    }

    deinit { PQfinish(handle) }

    /// Whether the connection is unusable (the server closed it, or a call found it broken).
    var isBroken: Bool { PQstatus(handle) != CONNECTION_OK }

    /// Whether the connection still looks usable: anything the server sent while it was idle (the error before
    /// it ends a session: restart, `pg_terminate_backend`) is read first, without waiting.
    var isAlive: Bool {
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, 0) > 0 { _ = PQconsumeInput(handle) }
        return !isBroken
    }

    /// The socket, to wait for notifications on.
    var socket: Int32 { PQsocket(handle) }

    /// Runs one statement (several without parameters); answers its rows and how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ parameters: [String?] = []) throws(PostgreSQLFailure) -> PostgreSQLRows {
        try Self.refuseNULs(parameters)
        let copies = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        let result: OpaquePointer? =
            parameters.isEmpty
            ? PQexec(handle, sql)
            : copies.withUnsafeBufferPointer { values in
                values.withMemoryRebound(to: UnsafePointer<CChar>?.self) { values in
                    PQexecParams(handle, sql, Int32(parameters.count), nil, values.baseAddress, nil, nil, 0)
                }
            }
        guard let result else {
            throw PostgreSQLFailure(message: Self.text(PQerrorMessage(handle)), connectionLost: isBroken)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw failure(result) }
        var rows: [[String?]] = []
        let (count, columns) = (PQntuples(result), PQnfields(result))
        rows.reserveCapacity(Int(count))
        for row in 0..<count {
            rows.append(
                (0..<columns).map { column in
                    PQgetisnull(result, row, column) != 0 ? nil : String(cString: PQgetvalue(result, row, column))
                })
        }
        return PostgreSQLRows(rows: rows, affected: Int(String(cString: PQcmdTuples(result))) ?? 0)
    }

    /// Commits the open transaction, running `statementBeforeCommit` first in the same round trip.
    func commit() throws(PostgreSQLFailure) {
        guard let last = statementBeforeCommit else {
            try execute("COMMIT")
            return
        }
        statementBeforeCommit = nil
        try executeAndCommit(last.sql, last.parameters)
    }

    /// Runs `sql` then `COMMIT` in one round trip (libpq's pipeline mode), inside the transaction the caller began:
    /// the locks `sql` takes (the change log's sequence row) are held for the statement and the commit's flush
    /// only, not for one more trip to the agent and back, which is what bounds how many commits per second every
    /// agent on the store makes together. Throws the first failure; the transaction is then aborted (roll it back).
    func executeAndCommit(_ sql: String, _ parameters: [String?]) throws(PostgreSQLFailure) {
        try Self.refuseNULs(parameters)
        guard PQenterPipelineMode(handle) == 1 else {
            throw PostgreSQLFailure(message: Self.text(PQerrorMessage(handle)), connectionLost: isBroken)
        }
        defer { PQexitPipelineMode(handle) }
        let copies = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        let sent = copies.withUnsafeBufferPointer { values in
            values.withMemoryRebound(to: UnsafePointer<CChar>?.self) { values in
                PQsendQueryParams(handle, sql, Int32(parameters.count), nil, values.baseAddress, nil, nil, 0) == 1
                    && PQsendQueryParams(handle, "COMMIT", 0, nil, nil, nil, nil, 0) == 1
                    && PQpipelineSync(handle) == 1
            }
        }
        guard sent else {
            throw PostgreSQLFailure(message: Self.text(PQerrorMessage(handle)), connectionLost: isBroken)
        }
        // Each statement's result, a NULL after each, then the sync point's result.
        var firstFailure: PostgreSQLFailure?
        var ends = 0
        while true {
            guard let result = PQgetResult(handle) else {
                ends += 1
                if isBroken || ends > 2 {
                    throw firstFailure
                        ?? PostgreSQLFailure(message: Self.text(PQerrorMessage(handle)), connectionLost: isBroken)
                }
                continue
            }
            defer { PQclear(result) }
            let status = PQresultStatus(result)
            if status == PGRES_PIPELINE_SYNC { break }
            if status == PGRES_FATAL_ERROR, firstFailure == nil { firstFailure = failure(result) }
        }
        if let firstFailure { throw firstFailure }
    }

    /// Parameters go to libpq as C strings, which end at a NUL byte, and PostgreSQL's text cannot hold one: a value
    /// with a NUL would be stored cut short (a refresh token lost). It is refused instead, before anything is sent.
    private static func refuseNULs(_ parameters: [String?]) throws(PostgreSQLFailure) {
        guard parameters.contains(where: { $0?.utf8.contains(0) == true }) else { return }
        throw PostgreSQLFailure(
            message: "a value holds a NUL byte, which PostgreSQL text cannot store", connectionLost: false)
    }

    private func failure(_ result: OpaquePointer) -> PostgreSQLFailure {
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let primary = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
        return PostgreSQLFailure(
            sqlState: state, message: primary ?? Self.text(PQerrorMessage(handle)),
            connectionLost: isBroken || PostgreSQLFailure.meansConnectionLost(state))
    }

    /// Reads what arrived on the socket; answers the payloads of the notifications received.
    func notifications() throws(PostgreSQLFailure) -> [String] {
        guard PQconsumeInput(handle) == 1 else {
            throw PostgreSQLFailure(message: Self.text(PQerrorMessage(handle)), connectionLost: true)
        }
        var payloads: [String] = []
        while let notification = PQnotifies(handle) {
            payloads.append(String(cString: notification.pointee.extra))
            PQfreemem(notification)
        }
        return payloads
    }

    private static func text(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        return String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A statement's answer: its rows as text (nil for NULL), and how many rows it inserted, updated or deleted.
struct PostgreSQLRows {
    var rows: [[String?]]
    var affected: Int

    /// The first column of the first row.
    var value: String? { rows.first?.first ?? nil }
}

/// What libpq or the server reported. The message is the server's primary message (never its detail, which
/// may quote a row) or libpq's connection error, neither of which holds a password.
struct PostgreSQLFailure: Error {
    var sqlState: String? = nil
    var message: String
    /// The connection is gone: the server restarted or ended it, or the network failed.
    var connectionLost: Bool
    /// Set when the failure came before anything of a write reached the server (its `BEGIN` failed).
    var nothingWritten = false
    /// A value that did not seal or open (`.sealing`, `.wrongKey`): answered as it is, the transaction rolled back.
    var sealing: StoreError? = nil

    init(sqlState: String? = nil, message: String, connectionLost: Bool) {
        self.sqlState = sqlState
        self.message = message
        self.connectionLost = connectionLost
    }

    init(_ sealing: StoreError) {
        self.init(message: sealing.message, connectionLost: false)
        self.sealing = sealing
    }

    /// Class 08 (connection exception), and the server shutting down or not accepting connections.
    static func meansConnectionLost(_ state: String?) -> Bool {
        guard let state else { return false }
        return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
    }

    /// A deadlock or serialization failure: the transaction was rolled back and may simply be run again.
    var isRetryable: Bool { sqlState == "40P01" || sqlState == "40001" }

    /// `lock_timeout` passed (55P03): another session held what the statement needed to lock.
    var isLockTimeout: Bool { sqlState == "55P03" }

    func storeError(_ context: String) -> StoreError {
        if let sealing { return sealing }
        let kind: StoreError.Kind = connectionLost ? .unavailable : isRetryable || isLockTimeout ? .busy : .io
        return StoreError(kind, "\(context): \(message)")
    }
}
