import Foundation
import Synchronization

/// The agent's notion of "now". Everything that compares against token expiries asks a `WallClock`,
/// so tests and transcripts can move time forward instead of sleeping.
package protocol WallClock: Sendable {
    func now() -> Date
}

/// The real time.
package struct SystemClock: WallClock {
    package init() {}
    package func now() -> Date { Date() }
}

/// The real time shifted by an offset that can be advanced (used by tests and `--allow-clock-control`).
package final class AdjustableClock: WallClock {
    private let offset = Mutex<TimeInterval>(0)

    package init(offset: TimeInterval = 0) { self.offset.withLock { $0 = offset } }

    package func now() -> Date { Date().addingTimeInterval(offset.withLock { $0 }) }

    /// Moves this clock forward (or back, with a negative value).
    package func advance(by seconds: TimeInterval) { offset.withLock { $0 += seconds } }
}
