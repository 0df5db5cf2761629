/// Bounds how many refreshes run against Smartcar at once, so ten thousand keys expiring together become a
/// steady stream instead of a burst that Smartcar would answer with 429s.
actor UpstreamLimiter {
    private let limit: Int
    private var inUse = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var nextWaiter = 0
    /// The most slots ever in use at once (reported by `status` and the benchmark).
    private(set) var peak = 0

    init(limit: Int) { self.limit = max(1, limit) }

    /// Waits for a free slot; every `acquire` must be paired with one `release`.
    func acquire() async {
        if inUse < limit {
            inUse += 1
            peak = max(peak, inUse)
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        guard nextWaiter < waiters.count else {
            inUse -= 1
            return
        }
        // The slot passes straight to the longest waiter.
        let waiter = waiters[nextWaiter]
        nextWaiter += 1
        if nextWaiter == waiters.count {
            waiters.removeAll(keepingCapacity: true)
            nextWaiter = 0
        }
        waiter.resume()
    }
}
