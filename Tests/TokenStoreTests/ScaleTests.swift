import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

/// Realistic rows, made fast: Smartcar tokens are UUIDs (36 characters); these have the same shape and
/// are unique per index (Foundation's `UUID()` would take most of the time of building a large store).
func realisticTokens(_ range: Range<Int>) -> [StoredToken] {
    let now = Date(timeIntervalSince1970: 1_700_000_000)
    func uuidShaped(_ kind: String, _ index: Int) -> String {
        let hex = String(index, radix: 16)
        return kind + "-0000-4000-8000-" + String(repeating: "0", count: 12 - hex.count) + hex
    }
    return TestEvidence.record(
        range.map { index in
            StoredToken(
                key: "user-\(index)",
                accessToken: uuidShaped("aaaaaaaa", index),
                refreshToken: uuidShaped("rrrrrrrr", index),
                expiresAt: now.addingTimeInterval(7200),
                refreshExpiresAt: now.addingTimeInterval(Double(60 * 86_400 - index)),
                scope: "read_odometer read_vehicle_info",
                generation: 1,
                lastRefreshedAt: now)
        })
}

func fillStore(_ store: TokenStore, rows: Int, chunk: Int = 50_000) async throws {
    var start = 0
    while start < rows {
        let end = min(rows, start + chunk)
        try await store.bulkInsertForBenchmark(realisticTokens(start..<end))
        start = end
    }
}

@Suite struct ScaleTests {
    @Test func bulkInsertBuildsALargeStoreThatReopensAndAnswers() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        try await fillStore(store, rows: 20_000)
        await store.close()

        let reopened = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, strict: true, sealing: testSecrets)
        #expect(try await reopened.count() == 20_000)
        #expect(try await reopened.load("user-12345")?.generation == 1)
        #expect(
            try await reopened.keysWithRefreshExpiringBefore(
                Date(timeIntervalSince1970: 1_700_000_000 + 60 * 86_400 - 19_998), limit: 5) == ["user-19999"])
        #expect(try await reopened.save(realisticTokens(12_345..<12_346)[0]).generation == 2)
    }

    /// Numbers for the report, not assertions: `TOKENSTORE_BENCH=1 swift test -c release --filter ScaleTests`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TOKENSTORE_BENCH"] != nil))
    func measure() async throws {
        let clock = ContinuousClock()
        let generate = clock.measure { _ = realisticTokens(0..<100_000) }
        print("BENCH generating 100000 tokens=\(generate)")
        for rows in [100_000, 1_000_000] {
            let folder = try TemporaryFolder("tokenstore-test")
            let store = try SQLiteTokenStore.open(
                .file(folder.storePath), application: testApplication, sealing: testSecrets)
            let fill = try await clock.measure { try await fillStore(store, rows: rows) }
            await store.close()
            let size = (try? FileManager.default.attributesOfItem(atPath: folder.storePath)[.size] as? Int) ?? 0
            var opens: [Duration] = []
            var reopened: TokenStore?
            for _ in 0..<5 {
                await reopened?.close()
                opens.append(
                    try clock.measure {
                        reopened = try SQLiteTokenStore.open(
                            .file(folder.storePath), application: testApplication, sealing: testSecrets)
                    })
            }
            let store2 = try #require(reopened)
            let quickCheck = try clock.measure { try rawSQL(folder.storePath, "PRAGMA quick_check") }
            var saves: [Duration] = []
            for index in 0..<200 {
                let token = realisticTokens(index..<index + 1)[0]
                saves.append(try await clock.measure { try await store2.save(token) })
            }
            saves.sort()
            let concurrent = try await clock.measure {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for token in realisticTokens(0..<1_000) { group.addTask { try await store2.save(token) } }
                    try await group.waitForAll()
                }
            }
            let load = try await clock.measure {
                for i in 0..<1_000 { _ = try await store2.load("user-\(i * 97 % rows)") }
            }
            print(
                """
                BENCH rows=\(rows) file=\(size / 1_048_576) MiB fill=\(fill) open=\(opens.map { "\($0)" }.joined(separator: ", "))
                BENCH quick_check(full)=\(quickCheck) save p50=\(saves[100]) p99=\(saves[198]) max=\(saves[199]) \
                1000 concurrent saves=\(concurrent) 1000 sequential loads=\(load)
                """)
            await store2.close()
        }
    }
}
