import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

/// `save(_:kind:unlessChangedAfter:)`: tokens whose save failed, written again later, yield to any later change
/// of their key (by any store, of any kind), not to changes of other keys or other applications; pruned entries
/// after the fence count as a change.
@Suite struct FencedSaveConformanceTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    enum LaterChange: String, CaseIterable, Sendable {
        case stored, exchanged, refreshed, forgotten, reauthRequired
    }

    @Test(arguments: Backend.all) func savesWhenOnlyOtherKeysOrApplicationsChanged(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let (agentA, agentB) = (try place.open(origin: "agent-A"), try place.open(origin: "agent-B"))
        let other = try place.open("other-app", origin: "agent-C")
        let before = try await agentA.save(sampleToken("k1"))
        let fence = try await agentA.latestChange()
        try await agentB.save(sampleToken("k2"))
        try await other.save(sampleToken("k1"))

        let outcome = try await agentA.save(
            sampleToken("k1", refresh: "refresh-retried"), kind: .exchanged, unlessChangedAfter: fence)
        guard case .saved(let written) = outcome else {
            Issue.record("superseded by changes of other keys or applications")
            return
        }
        #expect(written.refreshToken == "refresh-retried" && written.generation == before.generation + 1)
        #expect(try await agentB.load("k1") == written)
        #expect(try await other.load("k1")?.refreshToken == "refresh-secret-1")
        guard case .changes(let changes) = try await agentB.changes(after: fence, limit: 10) else {
            Issue.record("fell behind")
            return
        }
        #expect(changes.map { "\($0.key) \($0.kind) \($0.origin)" } == ["k2 stored agent-B", "k1 exchanged agent-A"])
    }

    @Test(arguments: Backend.all, LaterChange.allCases)
    func anyLaterChangeOfTheKeyWins(backend: Backend, change: LaterChange) async throws {
        let place = try await backend.makePlace()
        let (agentA, agentB) = (try place.open(origin: "agent-A"), try place.open(origin: "agent-B"))
        let stored = try await agentB.save(sampleToken("k1"))
        let fence = try await agentA.latestChange()
        switch change {
        case .stored: try await agentB.save(sampleToken("k1", refresh: "refresh-B"))
        case .exchanged: try await agentB.save(sampleToken("k1", refresh: "refresh-B"), kind: .exchanged)
        case .refreshed:
            _ = try await agentB.commitRefresh(
                sampleToken("k1", refresh: "refresh-B"), owner: "B", replacing: stored, now: now)
        case .forgotten: #expect(try await agentB.delete("k1"))
        case .reauthRequired: #expect(try await agentB.markNeedsReauth("k1", rejectedRefreshToken: "refresh-secret-1"))
        }
        let after = try await agentB.load("k1")
        let latest = try await agentA.latestChange()

        let outcome = try await agentA.save(
            sampleToken("k1", refresh: "refresh-retried"), kind: .stored, unlessChangedAfter: fence)
        #expect(outcome == .superseded)
        #expect(try await agentA.load("k1") == after)
        #expect(try await agentA.latestChange() == latest, "a superseded save logged a change")
    }

    @Test(arguments: Backend.all) func prunedEntriesAfterTheFenceCountAsAChange(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let agentA = try place.open(origin: "agent-A", changeLogCapacity: 2)
        try await agentA.save(sampleToken("k1"))
        let fence = try await agentA.latestChange()
        for key in ["k2", "k3", "k4"] { try await agentA.save(sampleToken(key)) }
        let outcome = try await agentA.save(
            sampleToken("k1", refresh: "refresh-retried"), kind: .stored, unlessChangedAfter: fence)
        #expect(outcome == .superseded)
        #expect(try await agentA.load("k1")?.refreshToken == "refresh-secret-1")
        // A fence at the newest pruned entry still tells: nothing after it was pruned.
        let recent = try await agentA.latestChange()
        guard case .saved = try await agentA.save(sampleToken("k1"), kind: .stored, unlessChangedAfter: recent) else {
            Issue.record("superseded with nothing pruned after the fence")
            return
        }
    }

    /// Seeded random saves, forgets and fenced saves of three keys by two stores, with fences taken at random
    /// points and a small change log: a fenced save is superseded exactly when its key changed after the fence
    /// or the entries after the fence were pruned.
    @Test(arguments: Backend.all, [1 as UInt64, 2, 3, 0xFE4CE])
    func fencedSavesMatchTheChangeLogModel(backend: Backend, seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let capacity = 6
        let place = try await backend.makePlace()
        let stores = [
            try place.open(origin: "agent-A", changeLogCapacity: capacity),
            try place.open(origin: "agent-B", changeLogCapacity: capacity),
        ]
        let keys = ["a", "b", "c"]
        var lastChange: [String: Int64] = [:]  // the model: each key's newest change
        var latest: Int64 = 0
        var rows: [String: String] = [:]  // each key's refresh token, nil when absent
        var fences: [Int64] = [0]
        for step in 0..<300 {
            let store = stores.randomElement(using: &random)!
            let key = keys.randomElement(using: &random)!
            let refresh = "refresh-\(step)"
            switch Int.random(in: 0..<6, using: &random) {
            case 0, 1:
                try await store.save(sampleToken(key, refresh: refresh))
                (latest, lastChange[key], rows[key]) = (latest + 1, latest + 1, refresh)
            case 2:
                let existed = try await store.delete(key)
                #expect(existed == (rows[key] != nil), "seed \(seed) step \(step)")
                if existed { (latest, lastChange[key], rows[key]) = (latest + 1, latest + 1, nil) }
            case 3:
                fences.append(try await store.latestChange())
                #expect(fences.last == latest, "seed \(seed) step \(step)")
            default:
                let fence = fences.randomElement(using: &random)!
                let superseded = (lastChange[key] ?? 0) > fence || fence < latest - Int64(capacity)
                let outcome = try await store.save(
                    sampleToken(key, refresh: refresh), kind: .stored, unlessChangedAfter: fence)
                switch outcome {
                case .superseded: #expect(superseded, "seed \(seed) step \(step): fence \(fence) wrongly superseded")
                case .saved(let written):
                    #expect(!superseded, "seed \(seed) step \(step): fence \(fence) ignored a later change")
                    #expect(written.refreshToken == refresh)
                    (latest, lastChange[key], rows[key]) = (latest + 1, latest + 1, refresh)
                }
            }
            for key in keys {
                #expect(
                    try await stores[0].load(key)?.refreshToken == rows[key], "seed \(seed) step \(step) key \(key)")
            }
        }
    }
}
