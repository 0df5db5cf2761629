/// How often and how patiently `SmartcarClient` retries transient failures: exponential back-off with full
/// jitter (a pause drawn from 0...min(maxDelay, baseDelay × 2^(n-1)) after the n-th failed attempt), unless
/// the server said when to come back (`Retry-After`). Never past the call's overall budget.
///
/// `jitter` and `sleep` are injectable so tests are deterministic and never really wait.
package struct RetryPolicy: Sendable {
    /// Attempts in all, the first included (1: never retry).
    package var maxAttempts: Int
    package var baseDelay: Duration
    package var maxDelay: Duration
    /// Picks the actual pause in `0...cap`.
    package var jitter: @Sendable (_ cap: Duration) -> Duration
    /// Waits; must throw when the task is cancelled.
    package var sleep: @Sendable (Duration) async throws -> Void

    package init(
        maxAttempts: Int = 3, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(5),
        jitter: @escaping @Sendable (_ cap: Duration) -> Duration = RetryPolicy.fullJitter,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
        self.sleep = sleep
    }

    package static let `default` = RetryPolicy()
    /// One attempt, no retries.
    package static let never = RetryPolicy(maxAttempts: 1)

    /// A uniformly random pause in `0...cap`.
    package static let fullJitter: @Sendable (Duration) -> Duration = { cap in cap * Double.random(in: 0...1) }

    /// The pause after failed attempt number `attempt` (1-based), jittered and clamped to `0...cap`.
    package func backoff(afterAttempt attempt: Int) -> Duration {
        var cap = baseDelay
        for _ in 1..<max(1, attempt) where cap < maxDelay { cap *= 2 }
        cap = min(cap, maxDelay)
        return min(max(jitter(cap), .zero), cap)
    }
}
