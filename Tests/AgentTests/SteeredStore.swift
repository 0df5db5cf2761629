import Foundation
import Synchronization

@testable import TokenStore

/// A real store whose saves (`save`, fenced or not) a test steers: each save takes the next queued step — fail
/// at once as a full disk would, or wait at the door until `releaseHeld()` — and goes through when none is
/// queued. Every other call is forwarded as it is.
final class SteeredStore: TokenStore {
    enum Step { case fail, hold }

    private struct State {
        var steps: [Step] = []
        var held: CheckedContinuation<Void, Never>?
        var waitingForHeld: CheckedContinuation<Void, Never>?
    }

    private let inner: any TokenStore
    private let state = Mutex(State())

    init(_ inner: any TokenStore) { self.inner = inner }

    /// Queues the steps of the next saves.
    func steer(_ steps: Step...) { state.withLock { $0.steps += steps } }

    /// Returns once a save is held at the door (one test waiter at a time).
    func waitForHeldSave() async {
        await withCheckedContinuation { continuation in
            let held = state.withLock { state in
                if state.held == nil { state.waitingForHeld = continuation }
                return state.held != nil
            }
            if held { continuation.resume() }
        }
    }

    /// Lets the held save go on to the real store.
    func releaseHeld() { state.withLock { $0.held.take() }?.resume() }

    private func door() async throws(StoreError) {
        switch state.withLock({ $0.steps.isEmpty ? nil : $0.steps.removeFirst() }) {
        case nil: return
        case .fail: throw StoreError(.io, "steered to fail")
        case .hold:
            await withCheckedContinuation { continuation in
                state.withLock { state in
                    state.held = continuation
                    return state.waitingForHeld.take()
                }?.resume()
            }
        }
    }

    var application: String { inner.application }
    var origin: String { inner.origin }

    func save(_ token: StoredToken, kind: ChangeKind) async throws(StoreError) -> StoredToken {
        try await door()
        return try await inner.save(token, kind: kind)
    }

    func save(
        _ token: StoredToken, kind: ChangeKind, unlessChangedAfter sequence: Int64
    ) async throws(StoreError) -> FencedSave {
        try await door()
        return try await inner.save(token, kind: kind, unlessChangedAfter: sequence)
    }

    func load(_ key: String) async throws(StoreError) -> StoredToken? { try await inner.load(key) }
    func lookup(_ key: String) async throws(StoreError) -> KeyLookup { try await inner.lookup(key) }
    func list() async throws(StoreError) -> [StoredToken] { try await inner.list() }
    func count() async throws(StoreError) -> Int { try await inner.count() }
    func delete(_ key: String) async throws(StoreError) -> Bool { try await inner.delete(key) }

    func markNeedsReauth(_ key: String, rejectedRefreshToken: String) async throws(StoreError) -> Bool {
        try await inner.markNeedsReauth(key, rejectedRefreshToken: rejectedRefreshToken)
    }

    func keysWithRefreshExpiringBefore(_ date: Date, limit: Int) async throws(StoreError) -> [String] {
        try await inner.keysWithRefreshExpiringBefore(date, limit: limit)
    }

    func acquireLease(
        _ key: String, owner: String, duration: TimeInterval, now: Date,
        holderIsGone: @escaping @Sendable (String) -> Bool
    ) async throws(StoreError) -> LeaseOutcome {
        try await inner.acquireLease(key, owner: owner, duration: duration, now: now, holderIsGone: holderIsGone)
    }

    func commitRefresh(
        _ token: StoredToken, owner: String, replacing spent: StoredToken?, now: Date
    ) async throws(StoreError) -> RefreshCommit {
        try await inner.commitRefresh(token, owner: owner, replacing: spent, now: now)
    }

    func releaseLease(_ key: String, owner: String) async throws(StoreError) -> Bool {
        try await inner.releaseLease(key, owner: owner)
    }

    func issueState(_ state: ConnectState, capacity: Int, now: Date) async throws(StoreError) {
        try await inner.issueState(state, capacity: capacity, now: now)
    }

    func consumeState(_ state: String, now: Date) async throws(StoreError) -> StateClaim {
        try await inner.consumeState(state, now: now)
    }

    func pruneStates(now: Date) async throws(StoreError) -> Int { try await inner.pruneStates(now: now) }
    func latestChange() async throws(StoreError) -> Int64 { try await inner.latestChange() }

    func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> ChangeBatch {
        try await inner.changes(after: sequence, limit: limit)
    }

    func changeFollower(after sequence: Int64) async throws(StoreError) -> any ChangeFollower {
        try await inner.changeFollower(after: sequence)
    }

    func bulkInsertForBenchmark(_ tokens: [StoredToken]) async throws(StoreError) {
        try await inner.bulkInsertForBenchmark(tokens)
    }

    func close() async { await inner.close() }
}
