import Synchronization

/// Gathers the answers to one batch; the batch reply is sent once every answer is in.
final class BatchCollector: Sendable {
    private struct State {
        var bodies: [[UInt8]?]
        var missing: Int
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(bodies: Array(repeating: nil, count: count), missing: count))
    }

    /// Stores the answer for `slot`; returns the whole batch reply when this was the last one missing.
    func fill(_ slot: Int, with body: [UInt8]) -> [UInt8]? {
        let complete = state.withLock { state -> [[UInt8]]? in
            guard state.bodies[slot] == nil else { return nil }
            state.bodies[slot] = body
            state.missing -= 1
            return state.missing == 0 ? state.bodies.compactMap { $0 } : nil
        }
        return complete.map(OutgoingMessage.batch)
    }
}
