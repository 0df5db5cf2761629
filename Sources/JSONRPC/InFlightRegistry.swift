import Synchronization

/// Requests and notifications being handled, with the claim-once rule that guarantees exactly one answer
/// per request: whoever removes an entry (the finished handler, `$/cancelRequest`, `cancelAll`) answers it
/// and then calls `finished`; everyone else finds nothing to claim.
final class InFlightRegistry: Sendable {
    /// Where a request's answer goes.
    enum Reply: Sendable {
        case single
        case batchSlot(BatchCollector, Int)
    }

    struct Entry: Sendable {
        /// nil for a notification.
        let id: RequestID?
        /// nil for a notification.
        let reply: Reply?
        /// nil until `attach` (the task starts right after registration).
        var task: Task<Void, Never>?
    }

    enum Registration { case registered(UInt64), duplicate, closed }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var keysByID: [RequestID: UInt64] = [:]
        var nextKey: UInt64 = 0
        var requests = 0
        /// Registered work whose answer has not yet been handed to the output.
        var unfinished = 0
        var served = 0
        var accepting = true
        var started = false
        var inputEnded = false
        var drainWaiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    var inFlightCount: Int { state.withLock { $0.requests } }
    var requestsServed: Int { state.withLock { $0.served } }
    var isAccepting: Bool { state.withLock { $0.accepting } }

    /// True the first time only: a connection runs once.
    func begin() -> Bool {
        state.withLock { state in
            defer { state.started = true }
            return !state.started && state.accepting
        }
    }

    /// Registers work before its task starts. A request whose id is already in flight is refused
    /// (`duplicate`); `null` ids are not tracked by id.
    func register(id: RequestID?, reply: Reply?) -> Registration {
        state.withLock { state in
            guard state.accepting else { return .closed }
            if let id, id != .null, state.keysByID[id] != nil { return .duplicate }
            let key = state.nextKey
            state.nextKey += 1
            if let id, id != .null { state.keysByID[id] = key }
            if reply != nil { state.requests += 1 }
            state.unfinished += 1
            state.entries[key] = Entry(id: id, reply: reply)
            return .registered(key)
        }
    }

    /// Records the task doing the work, so a cancel can reach it. When the entry is already gone the work
    /// either finished (cancelling is then harmless) or was claimed by a cancel that could not yet reach
    /// the task: either way it is cancelled here.
    func attach(_ task: Task<Void, Never>, to key: UInt64) {
        let claimed = state.withLock { state -> Bool in
            guard state.entries[key] != nil else { return true }
            state.entries[key]?.task = task
            return false
        }
        if claimed { task.cancel() }
    }

    /// Takes the entry if nobody has yet; the caller must answer it and call `finished()`.
    func claim(_ key: UInt64) -> Entry? {
        state.withLock { Self.claim(key, in: &$0) }
    }

    /// Takes the in-flight request with this id, if any (for `$/cancelRequest`).
    func claim(id: RequestID) -> Entry? {
        state.withLock { state in state.keysByID[id].flatMap { Self.claim($0, in: &state) } }
    }

    /// Stops accepting work and takes every entry (for `cancelAll`).
    func claimAll() -> [Entry] {
        state.withLock { state in
            state.accepting = false
            return state.entries.keys.sorted().compactMap { Self.claim($0, in: &state) }
        }
    }

    private static func claim(_ key: UInt64, in state: inout State) -> Entry? {
        guard let entry = state.entries.removeValue(forKey: key) else { return nil }
        if let id = entry.id, state.keysByID[id] == key { state.keysByID[id] = nil }
        if entry.reply != nil {
            state.requests -= 1
            state.served += 1
        }
        return entry
    }

    /// Counts answers sent without registering (errors for messages that never became work).
    func countServed() {
        state.withLock { $0.served += 1 }
    }

    /// Marks claimed work as answered (its answer handed to the output).
    func finished() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.unfinished -= 1
            guard state.unfinished == 0, state.inputEnded else { return nil }
            defer { state.drainWaiter = nil }
            return state.drainWaiter
        }
        waiter?.resume()
    }

    /// Stops accepting new work.
    func stopAccepting() {
        state.withLock { $0.accepting = false }
    }

    /// Called once input is over: returns when every registered request has been answered and every
    /// notification handler has returned (or all were claimed by `cancelAll`).
    func drain() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                state.inputEnded = true
                state.accepting = false
                if state.unfinished == 0 { return true }
                state.drainWaiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}
