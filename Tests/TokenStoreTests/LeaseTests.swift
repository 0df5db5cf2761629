import Foundation
import Testing

@testable import TokenStore

@Suite struct LeaseTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func leaseIsExclusiveUntilItExpires() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        let row = try await store.save(sampleToken())

        #expect(try await store.acquireLease("user-1", owner: "A", duration: 30, now: now) == .acquired(row))
        #expect(
            try await store.acquireLease("user-1", owner: "B", duration: 30, now: now.addingTimeInterval(10))
                == .heldByOther(until: now.addingTimeInterval(30), current: row))
        // The holder may extend its own lease.
        #expect(
            try await store.acquireLease("user-1", owner: "A", duration: 30, now: now.addingTimeInterval(20))
                == .acquired(row))
        #expect(
            try await store.acquireLease("user-1", owner: "B", duration: 30, now: now.addingTimeInterval(49))
                == .heldByOther(until: now.addingTimeInterval(50), current: row))
        // Expired: B takes it.
        #expect(
            try await store.acquireLease("user-1", owner: "B", duration: 30, now: now.addingTimeInterval(50))
                == .acquired(row))
    }

    @Test func onlyTheHolderCanRelease() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        let row = try await store.save(sampleToken())
        _ = try await store.acquireLease("user-1", owner: "A", duration: 30, now: now)

        #expect(try await store.releaseLease("user-1", owner: "B") == false)
        #expect(
            try await store.acquireLease("user-1", owner: "C", duration: 30, now: now)
                == .heldByOther(until: now.addingTimeInterval(30), current: row))
        #expect(try await store.releaseLease("user-1", owner: "A"))
        #expect(try await store.acquireLease("user-1", owner: "C", duration: 30, now: now) == .acquired(row))
        #expect(try await store.releaseLease("missing", owner: "A") == false)
    }

    @Test func leasingAMissingKeyWritesNothing() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        #expect(try await store.acquireLease("nobody", owner: "A", duration: 30, now: now) == .acquired(nil))
        #expect(try await store.count() == 0)
    }

    @Test func markNeedsReauthOnlyWhenTheRejectedTokenIsStillStored() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        try await store.save(sampleToken(refresh: "refresh-new"))
        // Another process already rotated the token this caller spent: leave the row alone.
        #expect(try await store.markNeedsReauth("user-1", rejectedRefreshToken: "refresh-old") == false)
        #expect(try await store.load("user-1")?.needsReauth == false)
        #expect(try await store.markNeedsReauth("user-1", rejectedRefreshToken: "refresh-new"))
        #expect(try await store.load("user-1")?.needsReauth == true)
        #expect(try await store.markNeedsReauth("missing", rejectedRefreshToken: "refresh-new") == false)
    }

    @Test func commitRefreshWritesTokensBumpsGenerationAndClearsTheLease() async throws {
        let log = LogCapture()
        let store = try SQLiteTokenStore.open(.memory, application: testApplication, logger: log.logger)
        try await store.save(sampleToken())
        try await store.markNeedsReauth("user-1", rejectedRefreshToken: "refresh-secret-1")
        _ = try await store.acquireLease("user-1", owner: "A", duration: 30, now: now)

        let refreshed = sampleToken(access: "access-secret-2", refresh: "refresh-secret-2")
        let written = try await store.commitRefresh(refreshed, owner: "A", now: now.addingTimeInterval(5))
        #expect(written.generation == 2)
        #expect(written.refreshToken == "refresh-secret-2")
        #expect(written.lastRefreshedAt == now.addingTimeInterval(5))
        #expect(written.needsReauth == false)
        #expect(try await store.load("user-1") == written)
        #expect(
            try await store.acquireLease("user-1", owner: "B", duration: 30, now: now.addingTimeInterval(6))
                == .acquired(written))
        #expect(log.lines(at: .warning).isEmpty)
    }

    @Test func commitRefreshKeepsARotatedTokenEvenWhenTheLeaseWasLost() async throws {
        let log = LogCapture()
        let store = try SQLiteTokenStore.open(.memory, application: testApplication, logger: log.logger)
        try await store.save(sampleToken())
        _ = try await store.acquireLease("user-1", owner: "A", duration: 30, now: now)
        // A was too slow: its lease expired and B took the key.
        _ = try await store.acquireLease("user-1", owner: "B", duration: 30, now: now.addingTimeInterval(31))

        let written = try await store.commitRefresh(
            sampleToken(access: "access-secret-A", refresh: "refresh-secret-A"), owner: "A",
            now: now.addingTimeInterval(32))
        #expect(try await store.load("user-1")?.refreshToken == "refresh-secret-A")
        #expect(written.generation == 2)
        // The lease is cleared: B's own commit or release will find nothing to clear.
        #expect(try await store.releaseLease("user-1", owner: "B") == false)
        let warnings = log.lines(at: .warning)
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("while 'B' holds the lease") == true)
        #expect(log.all.allSatisfy { !$0.contains("secret") })
    }

    @Test func commitRefreshAfterOwnLeaseExpiredWarns() async throws {
        let log = LogCapture()
        let store = try SQLiteTokenStore.open(.memory, application: testApplication, logger: log.logger)
        try await store.save(sampleToken())
        _ = try await store.acquireLease("user-1", owner: "A", duration: 30, now: now)
        try await store.commitRefresh(
            sampleToken(refresh: "refresh-secret-2"), owner: "A", now: now.addingTimeInterval(40))
        #expect(try await store.load("user-1")?.refreshToken == "refresh-secret-2")
        #expect(log.lines(at: .warning).first?.contains("after its lease expired") == true)
    }

    @Test func commitRefreshRecreatesAKeyDeletedMeanwhile() async throws {
        let log = LogCapture()
        let store = try SQLiteTokenStore.open(.memory, application: testApplication, logger: log.logger)
        try await store.save(sampleToken())
        _ = try await store.acquireLease("user-1", owner: "A", duration: 30, now: now)
        try await store.delete("user-1")
        try await store.commitRefresh(sampleToken(refresh: "refresh-secret-2"), owner: "A", now: now)
        #expect(try await store.load("user-1")?.refreshToken == "refresh-secret-2")
        #expect(log.lines(at: .warning).first?.contains("after the key was deleted") == true)
    }

    /// The fenced commit of a refresh: written while the row is the one the refresh spent (even with the lease
    /// lost), never over a later forget or store, including one that re-created the key at the same generation.
    @Test func aFencedCommitNeverWritesOverALaterOperation() async throws {
        for later in ["none", "leaseLost", "deleted", "stored", "deletedAndStoredAgain"] {
            let log = LogCapture()
            let store = try SQLiteTokenStore.open(.memory, application: testApplication, logger: log.logger)
            let spent = try await store.save(sampleToken())
            _ = try await store.acquireLease("user-1", owner: "A", duration: 30, now: now)
            var newer: StoredToken?
            switch later {
            case "leaseLost":
                _ = try await store.acquireLease("user-1", owner: "B", duration: 30, now: now.addingTimeInterval(31))
            case "deleted": try await store.delete("user-1")
            case "stored": newer = try await store.save(sampleToken(refresh: "refresh-secret-later"))
            case "deletedAndStoredAgain":
                try await store.delete("user-1")
                newer = try await store.save(sampleToken(refresh: "refresh-secret-later"))
                #expect(newer?.generation == spent.generation)
            default: break
            }
            var rotated = spent
            rotated.refreshToken = "refresh-secret-rotated"
            let outcome = try await store.commitRefresh(rotated, owner: "A", replacing: spent, now: now)
            let row = try await store.load("user-1")
            if later == "none" || later == "leaseLost" {
                #expect(outcome == .committed(try #require(row)) && row?.refreshToken == "refresh-secret-rotated")
            } else {
                #expect(outcome == .superseded(current: newer) && row == newer, "\(later)")
                #expect(log.lines(at: .warning).contains { $0.contains("superseded") })
            }
            #expect(log.all.allSatisfy { !$0.contains("secret") })
        }
    }
}
