import Dispatch
import Synchronization

/// A few PostgreSQL connections, opened when first needed, so one agent's refreshes do not queue behind one
/// connection. Each connection lives on its own serial queue (libpq blocks), and each call has one to itself.
///
/// A connection found broken (server restart, `pg_terminate_backend`, network) is dropped; the call that found it
/// throws `.unavailable`, and the next call reconnects. A failed connect is retried no sooner than a backoff that
/// doubles from 50 ms to 2 s, so a database that is down costs callers one quick error, not a connect each.
final class PostgreSQLPool: Sendable {
    private let slots: [PostgreSQLSlot]
    private let idle: Mutex<(slots: [Int], waiters: [CheckedContinuation<Int, Never>], closed: Bool)>
    /// The URI without its password, for messages.
    let displayName: String

    /// A pool of `size` connections, `first` (already open) the first one used.
    init(uri: String, schema: String, lockTimeout: Duration?, first: PostgreSQLConnection, size: Int = 4) {
        displayName = PostgreSQLURI.withoutPassword(uri)
        slots = (0..<size).map {
            PostgreSQLSlot(
                uri: uri, schema: schema, lockTimeout: lockTimeout, label: "TokenStore PostgreSQL \($0)",
                connection: $0 == 0 ? first : nil)
        }
        idle = Mutex((Array((0..<size).reversed()), [], false))
    }

    /// Runs `body` on a connection of its own, outside any explicit transaction; a read that finds the connection
    /// broken is tried once more on a fresh one.
    func read<T: Sendable>(
        _ body: @escaping @Sendable (PostgreSQLConnection) throws(PostgreSQLFailure) -> T
    ) async throws(StoreError) -> T {
        do {
            return try await run(body)
        } catch  where error.kind == .unavailable {
            return try await run(body)
        }
    }

    /// Runs `body` on a connection of its own, outside any explicit transaction, never again: for statements that
    /// write, whose effect a lost connection leaves unknown.
    func write<T: Sendable>(
        _ body: @escaping @Sendable (PostgreSQLConnection) throws(PostgreSQLFailure) -> T
    ) async throws(StoreError) -> T {
        try await run(body)
    }

    /// Runs `body` inside `BEGIN … COMMIT` on a connection of its own and returns once the commit is durable. A
    /// deadlock or serialization failure (rolled back by the server) runs it again, and so does a connection found
    /// broken at `BEGIN` (nothing was sent); a connection lost later throws `.unavailable`: the write may or may not
    /// have landed, so it is never retried here.
    func transaction<T: Sendable>(
        _ body: @escaping @Sendable (PostgreSQLConnection) throws(PostgreSQLFailure) -> T
    ) async throws(StoreError) -> T {
        try await run { connection throws(PostgreSQLFailure) in
            var attempt = 0
            while true {
                do throws(PostgreSQLFailure) {
                    do throws(PostgreSQLFailure) { try connection.execute("BEGIN") } catch {
                        var unsent = error  // nothing of the transaction reached the server
                        unsent.nothingWritten = true
                        throw unsent
                    }
                    let result = try body(connection)
                    try connection.commit()
                    return result
                } catch {
                    connection.statementBeforeCommit = nil
                    if !error.connectionLost { _ = try? connection.execute("ROLLBACK") }
                    attempt += 1
                    guard error.isRetryable, attempt < 5 else { throw error }
                }
            }
        }
    }

    /// Closes every connection; later calls throw `.closed`.
    func close() async {
        idle.withLock { $0.closed = true }
        for slot in slots { await slot.close() }
    }

    private func run<T: Sendable>(
        _ body: @escaping @Sendable (PostgreSQLConnection) throws(PostgreSQLFailure) -> T
    ) async throws(StoreError) -> T {
        let index = try await checkOut()
        defer { checkIn(index) }
        return try await slots[index].run(displayName, body)
    }

    private func checkOut() async throws(StoreError) -> Int {
        let taken: Int?? = idle.withLock { state in state.closed ? .some(nil) : state.slots.popLast().map { $0 } }
        switch taken {
        case .some(nil): throw StoreError(.closed, "the token store was closed")
        case .some(.some(let index)): return index
        case .none:
            return await withCheckedContinuation { continuation in
                let ready: Int? = idle.withLock { state in
                    if let index = state.slots.popLast() { return index }
                    state.waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    private func checkIn(_ index: Int) {
        let waiter = idle.withLock { state in
            if state.waiters.isEmpty {
                state.slots.append(index)
                return nil as CheckedContinuation<Int, Never>?
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: index)
    }
}

/// One connection of the pool and the serial queue it is used on.
private final class PostgreSQLSlot: @unchecked Sendable {
    // @unchecked Sendable is safe because: `connection`, `retryAt`, `backoff` and `closed` are only touched inside blocks
    // running on `queue`, a serial queue, which orders every access; the other properties are immutable.
    private let uri: String
    private let schema: String
    private let lockTimeout: Duration?
    private let queue: DispatchQueue
    private var connection: PostgreSQLConnection?
    private var retryAt: ContinuousClock.Instant?
    private var backoff: Duration = .milliseconds(50)

    private var closed = false

    init(uri: String, schema: String, lockTimeout: Duration?, label: String, connection: PostgreSQLConnection?) {
        self.uri = uri
        self.schema = schema
        self.lockTimeout = lockTimeout
        self.queue = DispatchQueue(label: label)
        self.connection = connection
    }

    func run<T: Sendable>(
        _ displayName: String, _ body: @escaping @Sendable (PostgreSQLConnection) throws(PostgreSQLFailure) -> T
    ) async throws(StoreError) -> T {
        let result: Result<T, StoreError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(
                    returning: Result { () throws(StoreError) -> T in
                        var attempt = 0
                        while true {
                            let connection = try self.connected(displayName)
                            do throws(PostgreSQLFailure) {
                                return try body(connection)
                            } catch {
                                if error.connectionLost || connection.isBroken { self.connection = nil }
                                attempt += 1
                                // A connection that broke while idle (server restarted) fails its first use.
                                guard error.connectionLost, error.nothingWritten, attempt < 2 else {
                                    throw error.storeError("PostgreSQL \(displayName)")
                                }
                            }
                        }
                    })
            }
        }
        return try result.get()
    }

    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.connection = nil
                self.closed = true
                continuation.resume()
            }
        }
    }

    /// The open connection, or a new one; throws `.unavailable` while the backoff after a failed connect lasts.
    private func connected(_ displayName: String) throws(StoreError) -> PostgreSQLConnection {
        guard !closed else { throw StoreError(.closed, "the token store was closed") }
        if let connection, connection.isAlive { return connection }
        connection = nil
        let now = ContinuousClock.now
        if let retryAt, now < retryAt {
            let milliseconds =
                (retryAt - now).components.attoseconds / 1_000_000_000_000_000
                + (retryAt - now).components.seconds * 1000
            throw StoreError(
                .unavailable,
                "PostgreSQL \(displayName) is unreachable; the agent tries to reconnect in \(milliseconds) ms")
        }
        do {
            let fresh = try PostgreSQLConnection(uri: uri, schema: schema, lockTimeout: lockTimeout)
            connection = fresh
            retryAt = nil
            backoff = .milliseconds(50)
            return fresh
        } catch {
            retryAt = now + backoff
            backoff = min(backoff * 2, .seconds(2))
            throw StoreError(.unavailable, "could not connect to PostgreSQL \(displayName): \(error.message)")
        }
    }
}
