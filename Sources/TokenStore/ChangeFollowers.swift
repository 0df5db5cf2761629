import Synchronization

/// A follower's place in the change log. After a batch that was not full, every change of its application up to
/// the newest sequence read before the batch has been seen, so the place moves there: a follower of a quiet
/// application is not told it fell behind just because other applications changed a lot.
struct FollowerPosition: Sendable {
    var sequence: Int64
    /// Whether the last batch was full: the next poll must read even if the cheap check says nothing changed.
    var moreWaiting = false

    static let batchSize = 256

    mutating func apply(_ batch: ChangeBatch, latest: Int64) -> ChangeBatch {
        switch batch {
        case .fellBehind(let newest):
            sequence = max(newest, latest)
            moreWaiting = false
        case .changes(let changes):
            if let last = changes.last { sequence = max(sequence, last.sequence) }
            moreWaiting = changes.count >= Self.batchSize
            if !moreWaiting { sequence = max(sequence, latest) }
        }
        return batch
    }
}

/// A follower that reads through the store's own API: its cheap check is the newest sequence (one index lookup).
/// For stores with no second connection to watch (SQLite in memory, `MemoryTokenStore`).
final class PollingChangeFollower: ChangeFollower {
    private let store: any TokenStore
    private let position: Mutex<FollowerPosition>

    init(store: any TokenStore, after sequence: Int64) {
        self.store = store
        self.position = Mutex(FollowerPosition(sequence: sequence))
    }

    func poll() async throws(StoreError) -> ChangeBatch {
        let latest = try await store.latestChange()
        let current = position.withLock { $0 }
        if latest <= current.sequence, !current.moreWaiting { return .changes([]) }
        let batch = try await store.changes(after: current.sequence, limit: FollowerPosition.batchSize)
        return position.withLock { $0.apply(batch, latest: latest) }
    }

    func close() async {}
}
