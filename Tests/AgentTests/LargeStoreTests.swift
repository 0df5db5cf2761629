import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import TokenStore

/// A store of 100,000 keys: the agent opens it without loading it, answers its first getToken at once, and
/// persists a refresh as it would in an empty store. Times are printed for the record, not asserted (the
/// benchmark owns the targets).
@Suite struct LargeStoreTests {
    @Test func aHundredThousandKeys() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let folder = try TemporaryFolder()
        let path = folder.file("state/tokens.sqlite3")
        let store = try SQLiteTokenStore.open(
            .file(path), application: FakeSmartcar.Options().clientID, sealing: agentSecrets)
        let minted = fake.mintTokens(userID: "k-99999")
        let soon = Date().addingTimeInterval(3600), later = Date().addingTimeInterval(50 * 86_400)
        for chunk in stride(from: 0, to: 100_000, by: 50_000) {
            try await store.bulkInsertForBenchmark(
                TestEvidence.record(
                    (chunk..<chunk + 50_000).map { n in
                        StoredToken(
                            key: "k-\(n)", accessToken: n == 99_999 ? minted.accessToken : "at-\(n)",
                            refreshToken: n == 99_999 ? minted.refreshToken : "rt-\(n)", expiresAt: soon,
                            refreshExpiresAt: later)
                    }))
        }
        await store.close()

        let started = ContinuousClock.now
        let agent = try AgentProcess(arguments: ["--store", path], environment: fake.agentEnvironment)
        let first = try await agent.call(id: 1, "getToken", ["key": "k-50000"])
        let coldStart = ContinuousClock.now - started
        #expect(first["result"]?["accessToken"] == "at-50000")
        let refreshStarted = ContinuousClock.now
        let refreshed = try await agent.call(id: 2, "getToken", ["key": "k-99999", "forceRefresh": true])
        let refresh = ContinuousClock.now - refreshStarted
        #expect(refreshed["result"]?["accessToken"]?.stringValue?.hasPrefix("fake-at-") == true)
        #expect(try await agent.call(id: 3, "status")["result"]?["storedKeys"] == 100_000)
        print(
            "100,000-key store (debug build): spawn to first getToken \(coldStart), one refresh with its commit \(refresh)"
        )
    }
}
