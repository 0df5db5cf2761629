import Dispatch
import Synchronization

/// The serial queue that owns the store's SQLite connection. Every SQLite call runs here, never on the
/// cooperative thread pool (SQLite blocks on fsync and on other processes' locks).
///
/// Writes go through a pending list and are committed in groups: all writes waiting when a group starts
/// share one `BEGIN IMMEDIATE … COMMIT` (one fsync), each in its own savepoint so one failing write does
/// not undo the others. Each caller is resumed only after the COMMIT that holds its write succeeded.
/// Work is not cancellable: a cancelled caller still waits for its write, which may already be durable.
final class StoreQueue: @unchecked Sendable {
    // @unchecked Sendable is safe because: `connection`, `watch` and `closed` (not thread-safe) are only
    // touched inside blocks running on `queue`, a serial queue, which orders every access (`init` runs
    // before the queue has any block); `pending` is a Mutex; `queue` is immutable and Sendable.
    private let queue: DispatchQueue
    private var connection: SQLiteConnection
    /// Notices the file being deleted or replaced (nil for a memory store); may swap `connection`.
    private let watch: StoreFileWatch?
    private var closed = false
    private let pending = Mutex(PendingWrites())

    /// Bounds how long a group holds the write lock against other processes.
    static let maxGroupSize = 128

    private struct PendingWrites {
        var jobs: [WriteJob] = []
        /// True while a drain block is queued or running; it will pick up jobs appended meanwhile.
        var drainScheduled = false
    }

    /// One caller's write. `perform` runs it inside the group's transaction and returns its own error (if
    /// any) and the completion to call with the group's outcome (nil: committed durably). `abandon` is
    /// called instead of `perform` when the group failed before reaching this job.
    private struct WriteJob: Sendable {
        let perform: @Sendable (SQLiteConnection) -> (error: StoreError?, finish: @Sendable (StoreError?) -> Void)
        let abandon: @Sendable (StoreError) -> Void
    }

    init(connection: SQLiteConnection, label: String, watch: StoreFileWatch? = nil) {
        self.connection = connection
        self.watch = watch
        self.queue = DispatchQueue(label: label)
    }

    /// Runs `body` on the queue outside any explicit transaction (each statement reads a consistent snapshot).
    func read<T: Sendable>(
        _ body: @escaping @Sendable (SQLiteConnection) throws(StoreError) -> T
    ) async throws(StoreError) -> T {
        let result: Result<T, StoreError> = await withCheckedContinuation { continuation in
            queue.async {
                if let error = self.usableConnectionError(forWrite: false) {
                    return continuation.resume(returning: .failure(error))
                }
                continuation.resume(returning: Result { () throws(StoreError) -> T in try body(self.connection) })
            }
        }
        return try result.get()
    }

    /// Runs `body` inside a write transaction (`BEGIN IMMEDIATE`, possibly shared with other writes) and
    /// returns its result once that transaction has committed durably.
    func write<T: Sendable>(
        _ body: @escaping @Sendable (SQLiteConnection) throws(StoreError) -> T
    ) async throws(StoreError) -> T {
        let result: Result<T, StoreError> = await withCheckedContinuation { continuation in
            let job = WriteJob(
                perform: { connection in
                    let outcome = Result { () throws(StoreError) -> T in try body(connection) }
                    let finish: @Sendable (StoreError?) -> Void = { groupError in
                        if case .success = outcome, let groupError {
                            continuation.resume(returning: .failure(groupError))
                        } else {
                            continuation.resume(returning: outcome)
                        }
                    }
                    if case .failure(let error) = outcome { return (error, finish) }
                    return (nil, finish)
                },
                abandon: { error in continuation.resume(returning: .failure(error)) })
            enqueue(job)
        }
        return try result.get()
    }

    /// Writes waiting for the next group (lets tests line writes up behind a busy queue).
    var pendingWriteCount: Int { pending.withLock { $0.jobs.count } }

    /// Closes the connection after the work already queued; later calls fail with `.closed`.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.closed = true
                self.watch?.retireIfDetached(self.connection)
                self.connection.close()
                continuation.resume()
            }
        }
    }

    private static let closedError = StoreError(.closed, "the token store was closed")

    /// Nil when `connection` may be used now (on the queue), else the error to answer: the store was closed,
    /// or its file was deleted or replaced and no usable store is at its path (see `StoreFileWatch`).
    private func usableConnectionError(forWrite: Bool) -> StoreError? {
        if closed { return Self.closedError }
        if let error = watch?.check(&connection, forWrite: forWrite) { return error }
        return connection.isOpen ? nil : Self.closedError
    }

    private func enqueue(_ job: WriteJob) {
        let schedule = pending.withLock { state in
            state.jobs.append(job)
            if state.drainScheduled { return false }
            state.drainScheduled = true
            return true
        }
        if schedule { queue.async { self.drainOneGroup() } }
    }

    /// Commits the writes waiting now (up to `maxGroupSize`), then yields the queue to reads before the next group.
    private func drainOneGroup() {
        let (group, more) = pending.withLock { state in
            let group = Array(state.jobs.prefix(Self.maxGroupSize))
            state.jobs.removeFirst(group.count)
            state.drainScheduled = !state.jobs.isEmpty
            return (group, state.drainScheduled)
        }
        commit(group)
        if more { queue.async { self.drainOneGroup() } }
    }

    private func commit(_ group: [WriteJob]) {
        if let error = usableConnectionError(forWrite: true) { return group.forEach { $0.abandon(error) } }
        do {
            try connection.execute("BEGIN IMMEDIATE")
        } catch {
            return group.forEach { $0.abandon(error.storeError("could not start a write transaction")) }
        }
        var finishes: [@Sendable (StoreError?) -> Void] = []
        var groupError: StoreError?
        for job in group {
            if let groupError {
                job.abandon(groupError)
                continue
            }
            do {
                try connection.execute("SAVEPOINT write")
            } catch {
                groupError = error.storeError("could not start a write")
                job.abandon(groupError!)
                continue
            }
            let (error, finish) = job.perform(connection)
            finishes.append(finish)
            if let error, !connection.isInTransaction {
                // SQLite rolled the whole transaction back (I/O error, disk full…): earlier writes are gone too.
                groupError = StoreError(error.kind, "a write in the same transaction failed: \(error.message)")
                continue
            }
            do {
                try connection.execute(error == nil ? "RELEASE write" : "ROLLBACK TO write; RELEASE write")
            } catch {
                groupError = error.storeError("could not finish a write")
            }
        }
        if groupError == nil, let watch, !watch.isInPlace {
            // Deleted or replaced since the check above: committing would write into a file nobody will read.
            groupError = StoreError(
                .io, "the token store \(watch.path) was deleted or replaced during the write; nothing was written")
        }
        if groupError == nil {
            do {
                try connection.execute("COMMIT")
            } catch {
                groupError = error.storeError("could not commit")
            }
        }
        if groupError != nil, connection.isInTransaction { try? connection.execute("ROLLBACK") }
        for finish in finishes { finish(groupError) }
    }
}
