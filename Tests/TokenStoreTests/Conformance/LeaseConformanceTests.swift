import Foundation
import Testing

@testable import TokenStore

/// Leases, generations and fenced commits, between two stores on one place (two agent processes).
@Suite struct LeaseConformanceTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test(arguments: Backend.all) func leasesAreExclusiveAcrossStoresUntilTheyExpire(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let (first, second) = (try place.open(origin: "A"), try place.open(origin: "B"))
        let row = try await first.save(sampleToken())
        #expect(try await first.acquireLease("user-1", owner: "A", duration: 30, now: now) == .acquired(row))
        #expect(
            try await second.acquireLease("user-1", owner: "B", duration: 30, now: now.addingTimeInterval(10))
                == .heldByOther(until: now.addingTimeInterval(30), current: row))
        #expect(try await second.releaseLease("user-1", owner: "B") == false)
        // A holder declared gone loses its lease at once.
        #expect(
            try await second.acquireLease(
                "user-1", owner: "B", duration: 30, now: now.addingTimeInterval(10), holderIsGone: { $0 == "A" })
                == .acquired(row))
        #expect(
            try await first.acquireLease("user-1", owner: "A", duration: 30, now: now.addingTimeInterval(39))
                == .heldByOther(until: now.addingTimeInterval(40), current: row))
        #expect(
            try await first.acquireLease("user-1", owner: "A", duration: 30, now: now.addingTimeInterval(40))
                == .acquired(row))
        #expect(try await first.releaseLease("user-1", owner: "A"))
        #expect(try await second.acquireLease("nobody", owner: "B", duration: 30, now: now) == .acquired(nil))
        #expect(try await second.count() == 1)
    }

    @Test(arguments: Backend.all) func concurrentAcquirersGetExactlyOneLease(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let stores = try (0..<3).map { try place.open(origin: "store-\($0)") }
        try await stores[0].save(sampleToken())
        let now = self.now
        let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<30 {
                group.addTask {
                    let outcome = try await stores[index % 3].acquireLease(
                        "user-1", owner: "owner-\(index)", duration: 30, now: now)
                    if case .acquired = outcome { return true }
                    return false
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(winners == 1)
    }

    @Test(arguments: Backend.all) func generationsAndConnectOptionsFollowEveryWrite(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let (first, second) = (try place.open(origin: "A"), try place.open(origin: "B"))
        var token = sampleToken()
        token.connectOptions = #"{"mode":"simulated","scope":["read_odometer"]}"#
        let stored = try await first.save(token, kind: .exchanged)
        #expect(stored.generation == 1 && stored.connectOptions == token.connectOptions)
        #expect(try await second.load("user-1") == stored)
        // A refresh keeps the options even when the refreshed token does not carry them.
        var rotated = stored
        rotated.refreshToken = "refresh-secret-2"
        rotated.connectOptions = nil
        let outcome = try await second.commitRefresh(rotated, owner: "B", replacing: stored, now: now)
        guard case .committed(let refreshed) = outcome else { Issue.record("not committed: \(outcome)"); return }
        #expect(refreshed.generation == 2 && refreshed.connectOptions == token.connectOptions)
        #expect(refreshed.lastRefreshedAt == now && refreshed.refreshToken == "refresh-secret-2")
        // A later store replaces them; a refresh that spent an older row is superseded and writes nothing.
        let restored = try await first.save(sampleToken(refresh: "refresh-secret-3"))
        #expect(restored.generation == 3 && restored.connectOptions == nil)
        #expect(
            try await second.commitRefresh(rotated, owner: "B", replacing: refreshed, now: now)
                == .superseded(current: restored))
        #expect(try await first.load("user-1") == restored)
        // After a delete, a fenced commit is superseded and an unfenced one re-creates the key.
        #expect(try await second.delete("user-1"))
        #expect(
            try await first.commitRefresh(rotated, owner: "A", replacing: restored, now: now)
                == .superseded(current: nil))
        let recreated = try await first.commitRefresh(rotated, owner: "A", now: now)
        #expect(recreated.generation == 1 && recreated.needsReauth == false)
    }

    @Test(arguments: Backend.all) func needsReauthIsMarkedOnlyOverTheRejectedToken(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let store = try place.open()
        try await store.save(sampleToken(refresh: "refresh-new"))
        _ = try await store.acquireLease("user-1", owner: "A", duration: 30, now: now)
        #expect(try await store.markNeedsReauth("user-1", rejectedRefreshToken: "refresh-old") == false)
        #expect(try await store.markNeedsReauth("user-1", rejectedRefreshToken: "refresh-new"))
        #expect(try await store.load("user-1")?.needsReauth == true)
        // The mark leaves the lease alone.
        #expect(try await store.releaseLease("user-1", owner: "A"))
        #expect(try await store.keysWithRefreshExpiringBefore(.distantFuture, limit: 10).isEmpty)
    }
}
