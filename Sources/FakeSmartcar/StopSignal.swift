import Foundation
import Synchronization

/// A one-shot event that blocked threads can wait for with a timeout (`stop()` fires it).
final class StopSignal: Sendable {
    // `fired` is only changed and tested with `condition` locked, so no wake-up is lost; the Mutex
    // just makes the flag Sendable.
    private let condition = NSCondition()
    private let flag = Mutex(false)
    private var fired: Bool { flag.withLock { $0 } }

    func fire() {
        condition.lock()
        flag.withLock { $0 = true }
        condition.broadcast()
        condition.unlock()
    }

    /// Waits up to `duration`; true if the signal fired (now or before).
    func wait(for duration: Duration) -> Bool {
        let deadline = Date(timeIntervalSinceNow: duration.seconds)
        condition.lock()
        defer { condition.unlock() }
        while !fired {
            if !condition.wait(until: deadline) { return fired }
        }
        return true
    }
}
