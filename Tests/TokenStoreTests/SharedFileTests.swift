import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

#if canImport(Glibc)
    import Glibc
#endif

/// Two `TokenStore`s on one file are two SQLite connections: the same locking two agent processes use.
@Suite struct SharedFileTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func twoStoresSeeEachOthersWritesAndContendOnLeases() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let first = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        let second = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)

        let saved = try await first.save(sampleToken())
        #expect(try await second.load("user-1") == saved)

        #expect(try await first.acquireLease("user-1", owner: "process-1", duration: 30, now: now) == .acquired(saved))
        #expect(
            try await second.acquireLease("user-1", owner: "process-2", duration: 30, now: now)
                == .heldByOther(until: now.addingTimeInterval(30), current: saved))

        let refreshed = try await first.commitRefresh(
            sampleToken(refresh: "refresh-secret-2"), owner: "process-1", now: now)
        #expect(
            try await second.acquireLease("user-1", owner: "process-2", duration: 30, now: now) == .acquired(refreshed))
        #expect(try await second.markNeedsReauth("user-1", rejectedRefreshToken: "refresh-secret-1") == false)
        #expect(try await first.delete("user-1"))
        #expect(try await second.load("user-1") == nil)
    }

    @Test func aLockHeldBeyondTheBusyTimeoutIsReportedAsBusy() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets, busyTimeout: .milliseconds(50))
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
        let folder = try TemporaryFolder("tokenstore-test")
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
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
        let reopened = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        #expect(try await reopened.count() == 301)
    }
}

/// A real second process (an exit test): it finds the parent's lease, commits a refresh anyway and dies
/// at once with `_exit`, without closing the store; the parent must see the committed tokens.
@Suite struct CrossProcessTests {
    @Test func anotherProcessSeesTheLeaseAndItsCommitSurvivesItsAbruptExit() async throws {
        let path = crossProcessStorePath(parent: getpid())
        defer { try? FileManager.default.removeItem(atPath: StoreFiles.folder(of: StoreFiles.folder(of: path))) }
        let store = try SQLiteTokenStore.open(.file(path), application: testApplication, sealing: testSecrets)
        try await store.save(sampleToken())
        _ = try await store.acquireLease("user-1", owner: "parent", duration: 30, now: crossProcessNow)

        let result = try #require(
            await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) {
                let report = await refreshFromChildProcess()
                FileHandle.standardOutput.write(Data(report.utf8))
                _exit(0)
            })
        #expect(String(decoding: result.standardOutputContent, as: UTF8.self) == "held by parent; committed")

        let row = try #require(try await store.load("user-1"))
        #expect(row.refreshToken == "refresh-from-child")
        #expect(row.generation == 2)
    }
}

private let crossProcessNow = Date(timeIntervalSince1970: 1_700_000_000)

/// Both processes derive the path from the parent's pid and the temporary folder they share (an exit test
/// cannot capture values here).
private func crossProcessStorePath(parent: pid_t) -> String {
    NSTemporaryDirectory() + "/tokenstore-xproc-\(parent)/state/tokens.sqlite3"
}

private func refreshFromChildProcess() async -> String {
    do {
        let store = try SQLiteTokenStore.open(
            .file(crossProcessStorePath(parent: getppid())), application: testApplication, sealing: testSecrets)
        guard
            case .heldByOther = try await store.acquireLease(
                "user-1", owner: "child", duration: 30, now: crossProcessNow)
        else {
            return "the child acquired a lease the parent holds"
        }
        try await store.commitRefresh(sampleToken(refresh: "refresh-from-child"), owner: "child", now: crossProcessNow)
        return "held by parent; committed"
    } catch {
        return "\(error)"
    }
}
