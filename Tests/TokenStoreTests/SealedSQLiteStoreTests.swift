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

    /// An agent killed after the commit that sealed a plaintext store but before its `VACUUM` leaves the replaced
    /// values in the file's free space; the next agent to open the store scrubs them. The crash state is made by
    /// hand: the rows sealed and the key recorded as not yet scrubbed, with `secure_delete` off, as no VACUUM ran.
    @Test func aScrubAKilledAgentDidNotFinishIsDoneByTheNextOpen() async throws {
        let folder = try TemporaryFolder("sealed-store")
        let tokens = SealingConformanceTests.tokens(40, seed: 6)
        let plain = try SQLiteTokenStore.open(.file(folder.storePath), application: "app", sealing: nil)
        for token in tokens { try await plain.save(token) }
        await plain.close()

        let raw = try SQLiteConnection(path: folder.storePath, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        try raw.execute("PRAGMA secure_delete = OFF")
        let identity = try raw.prepared("SELECT store_id, sealing_salt FROM store_meta")
        #expect(try identity.step())
        let sealer = try TokenSealer(
            secret: secrets("secret-1").current, storeID: identity.text(0), salt: identity.blob(1), application: "app")
        identity.reset()
        try raw.execute("BEGIN")
        let update = try raw.prepared(
            "UPDATE tokens SET access_token = ?1, refresh_token = ?2 WHERE application = 'app' AND key = ?3")
        for token in tokens {
            update.bind(
                1, blob: try sealer.seal(token.accessToken, key: token.key, column: .accessToken, generation: 1))
            update.bind(
                2, blob: try sealer.seal(token.refreshToken, key: token.key, column: .refreshToken, generation: 1))
            update.bind(3, token.key)
            try update.run()
            update.reset()
        }
        try raw.execute(
            """
            INSERT INTO sealing_keys (application, fingerprint, source, sealed_at, scrubbed)
            VALUES ('app', '\(sealer.fingerprint)', 'client-secret', 0, 0)
            """)
        try raw.execute("COMMIT")
        _ = try raw.firstColumn("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.close()
        #expect(!Self.hits(in: folder.storePath, for: tokens).isEmpty, "the crash state must hold plaintext")

        let reopened = try SQLiteTokenStore.open(
            .file(folder.storePath), application: "app", sealing: secrets("secret-1"))
        #expect(try await reopened.load("user-3")?.refreshToken == tokens[3].refreshToken)
        await reopened.close()
        let hits = Self.hits(in: folder.storePath, for: tokens)
        #expect(hits.isEmpty, "\(hits.prefix(3))")
        let check = try SQLiteConnection(path: folder.storePath, flags: 0x1 /* SQLITE_OPEN_READONLY */)
        #expect(try check.firstColumn("SELECT scrubbed FROM sealing_keys") == ["1"])
        check.close()
    }
}
