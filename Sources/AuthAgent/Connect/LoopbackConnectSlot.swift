import Synchronization

/// What ends a `connect`'s wait for its redirect.
enum LoopbackConnectEvent: Sendable {
    case redirect(LoopbackRequestHead)
    case timedOut
    /// The client closed its input (or a signal stopped the reading): nobody is left to hand the result to.
    case inputEnded
}

/// The one `connect` an agent runs at a time: whether one is waiting, on which redirect URI, and where the
/// events that end its wait go.
final class LoopbackConnectSlot: Sendable {
    private struct Waiting {
        var redirectURI: String
        var events: AsyncStream<LoopbackConnectEvent>.Continuation
        var redirectTaken = false
        var cancelled = false
    }

    private struct State {
        var waiting: Waiting?
        var inputEnded = false
        var releaseWaiters: [CheckedContinuation<Claim?, Never>] = []
    }

    private let state = Mutex(State())

    /// Takes the slot for a connect on `redirectURI`: the events that end its wait, or `Busy` (naming the
    /// redirect URI of the connect already waiting). A connect already cancelled is waited for: its answer may
    /// be out, but its port closes only as it ends, and the next connect may want that port.
    func claim(redirectURI: String) async -> Claim {
        while true {
            let (events, continuation) = AsyncStream.makeStream(of: LoopbackConnectEvent.self)
            // nil: the cancelled connect has ended, try again.
            let claimed = await withCheckedContinuation { (decided: CheckedContinuation<Claim?, Never>) in
                let outcome = state.withLock { state -> Claim? in
                    if let waiting = state.waiting {
                        guard waiting.cancelled else { return .failure(Busy(redirectURI: waiting.redirectURI)) }
                        state.releaseWaiters.append(decided)
                        return nil
                    }
                    if state.inputEnded { continuation.yield(.inputEnded) }
                    state.waiting = Waiting(redirectURI: redirectURI, events: continuation)
                    return .success(events)
                }
                if let outcome { decided.resume(returning: outcome) }
            }
            if let claimed { return claimed }
        }
    }

    typealias Claim = Result<AsyncStream<LoopbackConnectEvent>, Busy>

    struct Busy: Error {
        var redirectURI: String
    }

    /// Names the port actually listened on, for a second connect's error.
    func listening(on redirectURI: String) { state.withLock { $0.waiting?.redirectURI = redirectURI } }

    func release() {
        let waiters = state.withLock { state in
            state.waiting?.events.finish()
            state.waiting = nil
            defer { state.releaseWaiters = [] }
            return state.releaseWaiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    /// The waiting connect's task was cancelled (`$/cancelRequest`, `exit`): called at once, on the thread that
    /// cancels, so a connect read after the cancellation waits for the port instead of being refused.
    func cancel() { state.withLock { $0.waiting?.cancelled = true } }

    /// Hands the waiting connect its redirect; false if one was handed over already (the flow takes one).
    func takeRedirect(_ head: LoopbackRequestHead) -> Bool {
        state.withLock { state in
            guard state.waiting?.redirectTaken == false else { return false }
            state.waiting?.redirectTaken = true
            state.waiting?.events.yield(.redirect(head))
            return true
        }
    }

    func timeOut() { _ = state.withLock { $0.waiting?.events.yield(.timedOut) } }

    /// The end of the client's input: the connect waiting, and any started later, ends.
    func endInput() {
        state.withLock { state in
            state.inputEnded = true
            _ = state.waiting?.events.yield(.inputEnded)
        }
    }
}
