import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

/// What only SQLite's files have to show beside `SealingConformanceTests`: a forgotten key's values leave no trace in
/// the database, its WAL or its SHM (`secure_delete` and the WAL truncated after a delete), even unsealed.
@Suite struct SealedSQLiteStoreTests {
    /// Every store file (database, WAL, SHM) scanned for every token value and each 16-byte fragment of one.
    static func hits(in path: String, for tokens: [StoredToken]) -> [SecretScanner.Hit] {
        var scanner = SecretScanner()
        for token in tokens {
            scanner.add("access token", token.accessToken)
            scanner.add("refresh token", token.refreshToken)
        }
        return ["", "-wal", "-shm"].flatMap { suffix in
            bytes(of: path + suffix).map { scanner.scan($0, source: path + suffix) } ?? []
        }
    }

    @Test func aForgottenKeyLeavesNoTraceInTheFiles() async throws {
        let folder = try TemporaryFolder("sealed-store")
        try TestEvidence.exclude(
            folder, because: "a forgotten key leaves no trace even unsealed: the others stay plaintext")
        let store = try SQLiteTokenStore.open(.file(folder.storePath), application: "app")
        let tokens = SealingConformanceTests.tokens(3, seed: 5)
        for token in tokens { try await store.save(token) }
        #expect(try await store.delete("user-1"))
        let hits = Self.hits(in: folder.storePath, for: [tokens[1]])
        #expect(hits.isEmpty, "\(hits.prefix(3))")
        #expect(try await store.load("user-2")?.refreshToken == tokens[2].refreshToken)
        await store.close()
    }
}
