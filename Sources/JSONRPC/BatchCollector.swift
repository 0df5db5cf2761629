import Synchronization

/// Gathers the responses to one batch and sends them as one array once every request in it is answered.
/// Notifications in the batch take no slot; a batch of notifications only gets no reply at all.
final class BatchCollector: Sendable {
    fileprivate struct State {
        var slots: [[UInt8]?] = []
        var released: Set<Int> = []
        var filled = 0
        var sealed = false
        var sent = false
    }

    private let state = Mutex(State())
    private let send: @Sendable ([[UInt8]]) -> Void

    init(send: @escaping @Sendable ([[UInt8]]) -> Void) { self.send = send }

    /// A slot for the next element's response.
    func reserve() -> Int {
        state.withLock { state in
            state.slots.append(nil)
            return state.slots.count - 1
        }
    }

    /// The element in `slot` was a notification: it gets no response.
    func release(_ slot: Int) { state.withLock { _ = $0.released.insert(slot) } }

    /// Puts the encoded response of the element in `slot`.
    func fill(_ slot: Int, with body: [UInt8]) {
        let ready = state.withLock { state -> [[UInt8]]? in
            guard state.slots[slot] == nil else { return nil }
            state.slots[slot] = body
            state.filled += 1
            return state.takeIfComplete()
        }
        if let ready { send(ready) }
    }

    /// Every element has been looked at; the reply leaves as soon as the last response is in.
    func sealed() {
        let ready = state.withLock { state -> [[UInt8]]? in
            state.sealed = true
            return state.takeIfComplete()
        }
        if let ready { send(ready) }
    }
}

extension BatchCollector.State {
    fileprivate mutating func takeIfComplete() -> [[UInt8]]? {
        guard sealed, !sent, filled + released.count == slots.count, filled > 0 else { return nil }
        sent = true
        return slots.compactMap { $0 }
    }
}
