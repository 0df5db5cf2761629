import Foundation
import Synchronization

/// The agent's notion of "now". Everything that compares against token expiries asks a `WallClock`,
/// so tests and transcripts can move time forward instead of sleeping.
public protocol WallClock: Sendable {
    func now() -> Date
}

/// The real time.
public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// The real time shifted by an offset that can be advanced (used by tests and `--allow-clock-control`).
public final class AdjustableClock: WallClock {
    private let offset = Mutex<TimeInterval>(0)

    public init(offset: TimeInterval = 0) { self.offset.withLock { $0 = offset } }

    public func now() -> Date { Date().addingTimeInterval(offset.withLock { $0 }) }

    /// Moves this clock forward (or back, with a negative value).
    public func advance(by seconds: TimeInterval) { offset.withLock { $0 += seconds } }
}
