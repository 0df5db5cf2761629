import Dispatch
import Synchronization

/// Back-pressure on input: the reading thread waits here, before reading more, while too much is
/// outstanding (requests in flight, output queued), so a client flooding the agent cannot make it buffer
/// without bound; the client's own writes then block, as with any pipe.
///
/// Whoever may have made room calls `mayHaveOpened()`; it wakes the reader only when it is waiting. The
/// check of the condition and the decision to sleep happen under one lock that `mayHaveOpened()` also
/// takes, so a wake-up cannot fall between them.
final class InputGate: Sendable {
    private let waiting = Mutex(false)
    private let wakeUp = DispatchSemaphore(value: 0)

    /// Blocks (a dedicated thread only, never the cooperative pool) until `blocked()` is false.
    func wait(while blocked: () -> Bool) {
        while true {
            let mustWait = waiting.withLock { waiting in
                waiting = blocked()
                return waiting
            }
            guard mustWait else { return }
            wakeUp.wait()
        }
    }

    func mayHaveOpened() {
        let wake = waiting.withLock { waiting in
            defer { waiting = false }
            return waiting
        }
        if wake { wakeUp.signal() }
    }
}
