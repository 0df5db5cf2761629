import Foundation
import Testing
@testable import TokenStore

/// Two `TokenStore`s on one file are two SQLite connections: the same locking two agent processes use.
@Suite struct SharedFileTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func twoStoresSeeEachOthersWritesAndContendOnLeases() async throws {
        let folder = TempFolder()
        let first = try TokenStore.open(.file(folder.storePath))
        let second = try TokenStore.open(.file(folder.storePath))

        let saved = try await first.save(sampleToken())
        #expect(try await second.load("user-1") == saved)

        #expect(try await first.acquireLease("user-1", owner: "process-1", duration: 30, now: now) == .acquired(saved))
        #expect(try await second.acquireLease("user-1", owner: "process-2", duration: 30, now: now)
            == .heldByOther(until: now.addingTimeInterval(30), current: saved))

        let refreshed = try await first.commitRefresh(sampleToken(refresh: "refresh-secret-2"), owner: "process-1", now: now)
        #expect(try await second.acquireLease("user-1", owner: "process-2", duration: 30, now: now) == .acquired(refreshed))
        #expect(try await second.markNeedsReauth("user-1", rejectedRefreshToken: "refresh-secret-1") == false)
        #expect(try await first.delete("user-1"))
        #expect(try await second.load("user-1") == nil)
    }

    @Test func concurrentAcquirersAcrossStoresGetExactlyOneLease() async throws {
        let folder = TempFolder()
        let stores = try (0..<3).map { _ in try TokenStore.open(.file(folder.storePath)) }
        try await stores[0].save(sampleToken())
        let now = self.now
        let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<30 {
                group.addTask {
                    let outcome = try await stores[index % 3].acquireLease("user-1", owner: "owner-\(index)", duration: 30, now: now)
                    if case .acquired = outcome { return true }
                    return false
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(winners == 1)
    }

    @Test func aLockHeldBeyondTheBusyTimeoutIsReportedAsBusy() async throws {
        let folder = TempFolder()
        let store = try TokenStore.open(.file(folder.storePath), busyTimeout: .milliseconds(50))
        let saved = try await store.save(sampleToken())

        let other = try SQLiteConnection(path: folder.storePath, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        try other.execute("BEGIN IMMEDIATE")
        do {
            _ = try await store.acquireLease("user-1", owner: "A", duration: 30, now: now)
            Issue.record("acquired a lease while another connection held the write lock")
        } catch {
            #expect(error.kind == .busy)
        }
        // WAL: readers are not blocked by the writer.
        #expect(try await store.load("user-1")?.generation == 1)
        try other.execute("ROLLBACK")
        other.close()
        #expect(try await store.acquireLease("user-1", owner: "A", duration: 30, now: now) == .acquired(saved))
    }

    @Test func concurrentSavesAreEachCommittedOnce() async throws {
        let folder = TempFolder()
        let store = try TokenStore.open(.file(folder.storePath))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<300 {
                group.addTask { try await store.save(sampleToken("user-\(index)")) }
                group.addTask { try await store.save(sampleToken("hot", refresh: "refresh-\(index)")) }
            }
            try await group.waitForAll()
        }
        #expect(try await store.count() == 301)
        #expect(try await store.load("hot")?.generation == 300)
        await store.close()
        let reopened = try TokenStore.open(.file(folder.storePath))
        #expect(try await reopened.count() == 301)
    }
}
