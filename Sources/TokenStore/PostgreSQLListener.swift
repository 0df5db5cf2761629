import AgentSupport
import Foundation
import Synchronization

/// The store's `LISTEN` connection and the thread that owns it, blocked in poll(2) on its socket. It counts the
/// change notifications that arrive, and the reconnections after the connection was lost (notifications sent
/// while it was down are gone, so a follower then reads the log in full); followers compare these counts with the
/// ones they last read at. Reconnects with backoff (50 ms doubling to 2 s).
final class PostgreSQLListener: @unchecked Sendable {
    // @unchecked Sendable is safe because: `connection` is touched by the caller of `init` and `expectProbe` (both
    // before the thread starts) and afterwards only on the listener thread; the shared counts and waiters are in
    // `state`, a Mutex; `wakeup` is a pipe whose ends are immutable.

    /// What a follower read up to: the counts when it last read the log.
    struct Mark: Equatable, Sendable {
        var notifications = 0
        var connections = 0
    }

    private struct State {
        var mark = Mark()
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
        var stopped = false
    }

    private let uri: String
    private let schema: String
    private let channel: String
    private let displayName: String
    private let logger: Logger
    private var connection: PostgreSQLConnection?
    private let state = Mutex(State())
    private let wakeup: (read: Int32, write: Int32)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic(false)

    /// Connects and listens (blocking). The thread starts with `expectProbe`.
    init(uri: String, schema: String, channel: String, displayName: String, logger: Logger) throws(StoreError) {
        (self.uri, self.schema, self.channel, self.displayName, self.logger) = (
            uri, schema, channel, displayName, logger
        )
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            throw StoreError(.io, "could not create a pipe: \(String(cString: strerror(errno)))")
        }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        wakeup = (ends[0], ends[1])
        do {
            connection = try Self.listen(uri: uri, schema: schema, channel: channel)
        } catch {
            close(ends[0])
            close(ends[1])
            throw StoreError(
                .unavailable, "could not listen for changes on PostgreSQL \(displayName): \(error.message)")
        }
    }

    deinit {
        close(wakeup.read)
        close(wakeup.write)
    }

    /// Sends a notification from `sender` (another connection) and waits up to 5 s for it here, then starts the
    /// thread. Through a transaction-level pooler the notification never arrives: that is refused.
    func expectProbe(from sender: PostgreSQLConnection) throws(StoreError) {
        do {
            try sender.execute("SELECT pg_notify($1, 'probe')", [channel])
        } catch {
            throw error.storeError("could not send a notification on PostgreSQL \(displayName)")
        }
        let deadline = ContinuousClock.now + .seconds(5)
        var arrived = false
        while !arrived, let connection, ContinuousClock.now < deadline {
            var descriptor = pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0)
            let remaining = deadline - ContinuousClock.now
            let milliseconds = Int32(
                remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
            guard poll(&descriptor, 1, max(milliseconds, 1)) >= 0 || errno == EINTR else { break }
            do {
                arrived = try !connection.notifications().isEmpty
            } catch {
                throw error.storeError("the change listener of PostgreSQL \(displayName) failed")
            }
        }
        guard arrived else {
            throw StoreError(
                .io,
                "PostgreSQL \(displayName): a notification sent on one connection did not reach another within 5 s; the agent needs session features (LISTEN/NOTIFY, session settings), which a transaction-level pooler such as PgBouncer with pool_mode = transaction does not keep: connect to PostgreSQL directly or through a session-mode pool"
            )
        }
        started.store(true, ordering: .releasing)
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "TokenStore PostgreSQL listener"
        thread.start()
    }

    /// The counts now.
    var mark: Mark { state.withLock { $0.mark } }

    /// Returns when the counts differ from `seen`, or after `limit`.
    func wait(beyond seen: Mark, upTo limit: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id: Int? = state.withLock { state in
                guard state.mark == seen, !state.stopped else { return nil }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = continuation
                return state.nextWaiter
            }
            guard let id else { return continuation.resume() }
            Task {
                try? await Task.sleep(for: limit)
                self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
            }
        }
    }

    /// Stops the thread (waiting for it) and closes the connection.
    func stop() {
        let first = state.withLock { state in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        if started.load(ordering: .acquiring) {
            _ = write(wakeup.write, "x", 1)
            finished.wait()
        } else {
            connection = nil
        }
        wakeAll { _ in }
    }

    private static func listen(
        uri: String, schema: String, channel: String
    ) throws(PostgreSQLFailure) -> PostgreSQLConnection {
        let connection = try PostgreSQLConnection(uri: uri, schema: schema)
        try connection.execute("LISTEN \(PostgreSQLSchema.quoted(channel))")
        return connection
    }

    /// The thread: waits for notifications (or the wakeup pipe); reconnects after a loss.
    private func run() {
        var backoff: Duration = .milliseconds(50)
        while true {
            guard let connection else {
                do {
                    connection = try Self.listen(uri: uri, schema: schema, channel: channel)
                    backoff = .milliseconds(50)
                    logger.notice("token store \(displayName): listening for changes again")
                    wakeAll { $0.connections += 1 }
                } catch {
                    logger.warning(
                        "token store \(displayName): could not listen for changes (retrying): \(error.message)")
                    if waitForWakeup(timeout: backoff) { break }
                    backoff = min(backoff * 2, .seconds(2))
                }
                continue
            }
            var descriptors = [
                pollfd(fd: connection.socket, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeup.read, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&descriptors, 2, -1) >= 0 || errno == EINTR else { continue }
            if descriptors[1].revents != 0 { break }
            guard descriptors[0].revents != 0 else { continue }
            do throws(PostgreSQLFailure) {
                let payloads = try connection.notifications()
                if !payloads.isEmpty { wakeAll { $0.notifications += payloads.count } }
                if connection.isBroken {
                    throw PostgreSQLFailure(message: "the server closed it", connectionLost: true)
                }
            } catch {
                logger.warning("token store \(displayName): the change listener lost its connection: \(error.message)")
                self.connection = nil
            }
        }
        connection = nil
    }

    /// Whether the wakeup pipe became readable within `timeout` (the store is closing).
    private func waitForWakeup(timeout: Duration) -> Bool {
        var descriptor = pollfd(fd: wakeup.read, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(
            timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return poll(&descriptor, 1, milliseconds) > 0
    }

    /// Updates the counts and resumes every waiter.
    private func wakeAll(_ update: (inout Mark) -> Void) {
        let waiters = state.withLock { state in
            update(&state.mark)
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        waiters.forEach { $0.resume() }
    }
}
