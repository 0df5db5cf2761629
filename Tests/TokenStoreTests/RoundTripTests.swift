import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

@Suite struct RoundTripTests {
    @Test func saveLoadListCountDelete() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        #expect(try await store.load("user-1") == nil)
        #expect(try await store.count() == 0)

        var token = sampleToken()
        token.lastRefreshedAt = Date(timeIntervalSince1970: 1_700_000_000.125)
        let written = try await store.save(token)
        var expected = token
        expected.generation = 1
        #expect(written == expected)
        #expect(try await store.load("user-1") == expected)

        try await store.save(sampleToken("user-0", access: "a0", refresh: "r0"))
        #expect(try await store.list().map(\.key) == ["user-0", "user-1"])
        #expect(try await store.count() == 2)

        #expect(try await store.delete("user-1"))
        #expect(try await store.delete("user-1") == false)
        #expect(try await store.load("user-1") == nil)
        #expect(try await store.count() == 1)
    }

    @Test func rowsSurviveReopening() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        let written = try await store.save(sampleToken())
        await store.close()
        let reopened = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        #expect(try await reopened.load("user-1") == written)
    }

    @Test func everyWriteOfNewTokensBumpsTheGeneration() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        var token = sampleToken()
        token.generation = 42  // ignored: the store counts
        #expect(try await store.save(token).generation == 1)
        #expect(try await store.save(token).generation == 2)
        token.refreshToken = "refresh-secret-2"
        #expect(try await store.commitRefresh(token, owner: "a").generation == 3)
        #expect(try await store.load("user-1")?.generation == 3)
        // Marking and leasing are not new tokens.
        _ = try await store.acquireLease("user-1", owner: "a", duration: 30, now: Date())
        try await store.markNeedsReauth("user-1", rejectedRefreshToken: "refresh-secret-2")
        #expect(try await store.load("user-1")?.generation == 3)
    }

    @Test func saveClearsNeedsReauthAndTheLease() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        try await store.save(sampleToken())
        #expect(try await store.markNeedsReauth("user-1", rejectedRefreshToken: "refresh-secret-1"))
        let now = Date()
        _ = try await store.acquireLease("user-1", owner: "a", duration: 60, now: now)
        let saved = try await store.save(sampleToken(refresh: "refresh-secret-new"))
        #expect(saved.needsReauth == false)
        #expect(try await store.acquireLease("user-1", owner: "b", duration: 60, now: now) == .acquired(saved))
    }

    @Test func memoryStoreHasTheSameBehaviour() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        try await store.save(sampleToken())
        #expect(try await store.load("user-1")?.refreshToken == "refresh-secret-1")
        #expect(store.location == .memory)
    }

    @Test func keysWithRefreshExpiringBeforeAreSoonestFirstAndSkipRowsNeedingConnect() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        for (key, expiry) in [
            ("late", 3_000.0), ("soon", 1_000.0), ("middle", 2_000.0), ("dead", 500.0), ("never", -1),
        ] {
            var token = sampleToken(key, refresh: "refresh-\(key)")
            token.refreshExpiresAt = expiry < 0 ? nil : Date(timeIntervalSince1970: expiry)
            try await store.save(token)
        }
        try await store.markNeedsReauth("dead", rejectedRefreshToken: "refresh-dead")
        #expect(
            try await store.keysWithRefreshExpiringBefore(Date(timeIntervalSince1970: 2_500), limit: 10) == [
                "soon", "middle",
            ])
        #expect(
            try await store.keysWithRefreshExpiringBefore(Date(timeIntervalSince1970: 9_999), limit: 2) == [
                "soon", "middle",
            ])
    }

    @Test func tokensNeverAppearInDescriptions() async throws {
        let token = sampleToken()
        for text in [
            token.description, String(reflecting: token), "\(token)",
            {
                var s = ""; dump(token, to: &s); return s
            }(),
        ] {
            #expect(!text.contains("access-secret-1"))
            #expect(!text.contains("refresh-secret-1"))
            #expect(text.contains("user-1"))
        }
    }

    @Test func closedStoreThrowsClosed() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        await store.close()
        await #expect(throws: StoreError.self) { try await store.load("user-1") }
        do {
            try await store.save(sampleToken())
            Issue.record("save after close succeeded")
        } catch {
            #expect(error.kind == .closed)
        }
    }
}
