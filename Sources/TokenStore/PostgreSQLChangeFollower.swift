import Synchronization

/// One agent's follower of a PostgreSQL store. `poll()` always reads the log (one statement, an index probe when
/// nothing is new), so a change committed before the poll is seen, notified or not: notifications are lost while
/// the listener is disconnected, the log is not. `waitForChange` returns as soon as the store's listener receives
/// a notification (or reconnects) after the last poll.
final class PostgreSQLChangeFollower: ChangeFollower {
    private let store: PostgreSQLTokenStore
    private let listener: PostgreSQLListener
    private let state: Mutex<(position: FollowerPosition, seen: PostgreSQLListener.Mark?, closed: Bool)>

    init(store: PostgreSQLTokenStore, listener: PostgreSQLListener, after sequence: Int64) {
        self.store = store
        self.listener = listener
        self.state = Mutex((FollowerPosition(sequence: sequence), nil, false))
    }

    func poll() async throws(StoreError) -> ChangeBatch {
        let mark = listener.mark
        let current = state.withLock { $0 }
        guard !current.closed else { throw StoreError(.closed, "the change follower was closed") }
        let application = store.application
        let sequence = current.position.sequence
        let (latest, batch) = try await store.pool.read { connection throws(PostgreSQLFailure) in
            try PostgreSQLChangeRows.after(sequence, limit: FollowerPosition.batchSize, application, connection)
        }
        return state.withLock { state in
            state.seen = mark
            return state.position.apply(batch, latest: latest)
        }
    }

    func waitForChange(upTo limit: Duration) async {
        guard let seen = state.withLock({ $0.seen }) else { return }
        await listener.wait(beyond: seen, upTo: limit)
    }

    func close() async { state.withLock { $0.closed = true } }
}
