import Foundation
import Synchronization

/// One answer `Fault.hold` keeps back: the connection's thread waits on it until the test releases it (then
/// sends the answer and says so) or the fake stops (then closes the connection unanswered).
final class HeldAnswer: Sendable {
    private enum Phase { case held, released, abandoned, sent }

    let requestID: String
    // `phase` is only changed and tested with `condition` locked, so no wake-up is lost; the Mutex just
    // makes it Sendable.
    private let condition = NSCondition()
    private let phase = Mutex(Phase.held)

    init(requestID: String) { self.requestID = requestID }

    private func move(to next: Phase, from allowed: Set<Phase>) {
        condition.lock()
        phase.withLock { if allowed.contains($0) { $0 = next } }
        condition.broadcast()
        condition.unlock()
    }

    private func wait(while waiting: Set<Phase>) -> Phase {
        condition.lock()
        defer { condition.unlock() }
        while waiting.contains(phase.withLock({ $0 })) { condition.wait() }
        return phase.withLock { $0 }
    }

    func release() { move(to: .released, from: [.held]) }
    func abandon() { move(to: .abandoned, from: [.held]) }
    /// The connection's thread is done with the answer (sent, or the connection failed).
    func markSent() { move(to: .sent, from: [.released, .abandoned]) }

    /// For the connection's thread: true when released, false when the fake stopped first.
    func waitForRelease() -> Bool { wait(while: [.held]) == .released }

    /// For the releaser: returns once the connection's thread is done with the answer.
    func waitUntilSent() { _ = wait(while: [.held, .released]) }
}

/// The answers held now, in the order they were held, with a condition a test can wait on.
final class HeldAnswers: Sendable {
    private let condition = NSCondition()
    // Only changed with `condition` locked (see `HeldAnswer`).
    private let answers = Mutex<[HeldAnswer]>([])
    private let stopped = Mutex(false)

    /// Holds `answer`; one the fake stopped before is abandoned at once.
    func add(_ answer: HeldAnswer) {
        condition.lock()
        let isStopped = stopped.withLock { $0 }
        if !isStopped { answers.withLock { $0.append(answer) } }
        condition.broadcast()
        condition.unlock()
        if isStopped { answer.abandon() }
    }

    var count: Int { answers.withLock { $0.count } }
    var requestIDs: [String] { answers.withLock { $0.map(\.requestID) } }

    /// Waits until at least `count` answers are held; false if `timeout` passes first.
    func wait(forCount count: Int, timeout: Duration) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while answers.withLock({ $0.count }) < count {
            if !condition.wait(until: deadline) { return answers.withLock { $0.count } >= count }
        }
        return true
    }

    /// Takes every held answer out, in the order they were held.
    func takeAll() -> [HeldAnswer] {
        condition.lock()
        defer { condition.unlock() }
        return answers.withLock { answers in
            defer { answers.removeAll() }
            return answers
        }
    }

    /// At `stop()`: every held answer, and any held later, ends unanswered.
    func abandonAll() {
        condition.lock()
        stopped.withLock { $0 = true }
        condition.unlock()
        for answer in takeAll() { answer.abandon() }
    }
}
