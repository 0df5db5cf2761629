import Synchronization

/// Gathers the responses to one batch and sends them as one array once every request in it is answered.
/// Notifications in the batch take no slot; a batch of notifications only gets no reply at all.
final class BatchCollector: Sendable {
    fileprivate struct State {
        var slots: [Response?] = []
        var released: Set<Int> = []
        var filled = 0
        var sealed = false
        var sent = false
    }

    private let state = Mutex(State())
    private let send: @Sendable ([Response]) -> Void

    init(send: @escaping @Sendable ([Response]) -> Void) { self.send = send }

    /// A slot for the next element's response.
    func reserve() -> Int {
        state.withLock { state in
            state.slots.append(nil)
            return state.slots.count - 1
        }
    }

    /// The element in `slot` was a notification: it gets no response.
    func release(_ slot: Int) { state.withLock { _ = $0.released.insert(slot) } }

    func fill(_ slot: Int, with response: Response) {
        let ready = state.withLock { state -> [Response]? in
            guard state.slots[slot] == nil else { return nil }
            state.slots[slot] = response
            state.filled += 1
            return state.takeIfComplete()
        }
        if let ready { send(ready) }
    }

    /// Every element has been looked at; the reply leaves as soon as the last response is in.
    func sealed() {
        let ready = state.withLock { state -> [Response]? in
            state.sealed = true
            return state.takeIfComplete()
        }
        if let ready { send(ready) }
    }
}

extension BatchCollector.State {
    fileprivate mutating func takeIfComplete() -> [Response]? {
        guard sealed, !sent, filled + released.count == slots.count, filled > 0 else { return nil }
        sent = true
        return slots.compactMap { $0 }
    }
}
