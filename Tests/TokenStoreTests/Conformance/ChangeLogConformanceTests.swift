import Foundation
import Testing

@testable import TokenStore

/// The change signal: every mutation is logged with its kind and origin, a lease is not, other applications'
/// changes are not shown, a follower on another store sees them, and one that fell behind the pruned entries is
/// told so.
@Suite struct ChangeLogConformanceTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test(arguments: Backend.all) func everyMutationIsLoggedOnceWithItsKindAndOrigin(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let (agentA, agentB) = (try place.open(origin: "agent-A"), try place.open(origin: "agent-B"))
        let other = try place.open("other-app", origin: "agent-C")
        let start = try await agentB.latestChange()
        #expect(start == 0)

        let stored = try await agentA.save(sampleToken("k1"))
        try await agentB.save(sampleToken("k2"), kind: .exchanged)
        try await other.save(sampleToken("k1"))
        _ = try await agentA.acquireLease("k1", owner: "A", duration: 30, now: now)  // not a change
        _ = try await agentA.releaseLease("k1", owner: "A")  // not a change
        _ = try await agentB.commitRefresh(
            sampleToken("k1", refresh: "refresh-2"), owner: "B", replacing: stored, now: now)
        if case .committed = try await agentA.commitRefresh(stored, owner: "A", replacing: stored, now: now) {
            Issue.record("a superseded refresh was written")
        }
        #expect(try await agentA.markNeedsReauth("k1", rejectedRefreshToken: "refresh-2"))
        #expect(try await agentA.markNeedsReauth("k1", rejectedRefreshToken: "refresh-stale") == false)
        #expect(try await agentB.delete("k2"))
        #expect(try await agentB.delete("k2") == false)

        let expected: [(String, ChangeKind, String)] = [
            ("k1", .stored, "agent-A"), ("k2", .exchanged, "agent-B"), ("k1", .refreshed, "agent-B"),
            ("k1", .reauthRequired, "agent-A"), ("k2", .forgotten, "agent-B"),
        ]
        guard case .changes(let changes) = try await agentA.changes(after: start, limit: 100) else {
            Issue.record("fell behind")
            return
        }
        #expect(changes.map { "\($0.key) \($0.kind) \($0.origin)" } == expected.map { "\($0.0) \($0.1) \($0.2)" })
        #expect(zip(changes, changes.dropFirst()).allSatisfy { $0.sequence < $1.sequence })
        // The other application's change took a sequence number too, but is not shown.
        #expect(try await agentB.latestChange() == 6)
        #expect(
            try await other.changes(after: 0, limit: 100)
                == .changes([StoreChange(sequence: 3, key: "k1", kind: .stored, origin: "agent-C")]))
        #expect(try await agentA.changes(after: changes[2].sequence, limit: 1) == .changes([changes[3]]))
    }

    @Test(arguments: Backend.all) func aFollowerOnAnotherStoreSeesEachChangeOnce(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let writer = try place.open(origin: "writer")
        try await writer.save(sampleToken("before"))
        let reader = try place.open(origin: "reader")
        let follower = try await reader.changeFollower(after: try await reader.latestChange())
        #expect(try await follower.poll() == .changes([]))
        var seen: [String] = []
        for index in 0..<20 {
            let key = "k\(index % 3)"
            if index % 4 == 3 { try await writer.delete(key) } else { try await writer.save(sampleToken(key)) }
            guard case .changes(let changes) = try await follower.poll() else { Issue.record("fell behind"); return }
            #expect(changes.count <= 1)
            seen += changes.map { "\($0.key) \($0.kind)" }
            #expect(try await follower.poll() == .changes([]))
        }
        guard case .changes(let all) = try await reader.changes(after: 1, limit: 100) else { Issue.record(""); return }
        #expect(seen == all.map { "\($0.key) \($0.kind)" })
        #expect(seen.count == 20)
        await follower.close()
    }

    @Test(arguments: Backend.all) func aFollowerPastThePrunedEntriesIsToldToReload(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let writer = try place.open(origin: "writer", changeLogCapacity: 4)
        let quiet = try place.open("quiet-app", origin: "quiet", changeLogCapacity: 4)
        let follower = try await writer.changeFollower(after: 0)
        let quietFollower = try await quiet.changeFollower(after: 0)
        for index in 0..<3 { try await writer.save(sampleToken("k\(index)")) }
        guard case .changes(let early) = try await follower.poll() else { Issue.record("fell behind early"); return }
        #expect(early.count == 3)
        #expect(try await quietFollower.poll() == .changes([]))
        for index in 3..<10 {
            try await writer.save(sampleToken("k\(index)"))
            // A quiet application's follower that keeps polling is never told to reload for others' changes.
            #expect(try await quietFollower.poll() == .changes([]))
        }
        #expect(try await follower.poll() == .fellBehind(latest: 10))
        #expect(try await writer.changes(after: 2, limit: 100) == .fellBehind(latest: 10))
        // Reloaded: it follows on from the newest change.
        #expect(try await follower.poll() == .changes([]))
        try await writer.delete("k9")
        guard case .changes(let later) = try await follower.poll() else { Issue.record("fell behind again"); return }
        #expect(later.map(\.kind) == [.forgotten] && later.first?.sequence == 11)
        #expect(try await quietFollower.poll() == .changes([]))
        await follower.close()
        await quietFollower.close()
    }
}
