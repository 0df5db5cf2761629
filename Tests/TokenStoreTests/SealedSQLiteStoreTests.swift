import AgentTestSupport
import Foundation
import Sealing
import Testing

@testable import TokenStore

/// A SQLite store sealed with a client secret: nothing readable in its files, a wrong secret refused before any
/// write, a rotation that re-seals, values that open only in their own row, and forgotten tokens gone.
@Suite struct SealedSQLiteStoreTests {
    static func secrets(_ secret: String, previous: String? = nil) -> StoreSecrets {
        StoreSecrets(
            current: .clientSecret(SecretBytes(Array(secret.utf8))),
            previous: previous.map { .clientSecret(SecretBytes(Array($0.utf8))) })
    }

    /// Random tokens long enough for the scanner's 16-byte windows.
    static func tokens(_ count: Int, seed: UInt64) -> [StoredToken] {
        var generator = SeededGenerator(seed: seed)
        func value(_ prefix: String) -> String {
            prefix + "-" + (0..<40).map { _ in String(UInt8.random(in: 0...15, using: &generator), radix: 16) }.joined()
        }
        return (0..<count).map { sampleToken("user-\($0)", access: value("access"), refresh: value("refresh")) }
    }

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

    @Test func aPlaintextStoreIsSealedInPlaceLeavingNoValueInItsFiles() async throws {
        let folder = try TemporaryFolder("sealed-store")
        let tokens = Self.tokens(40, seed: 0x5EA1_0001)
        let plain = try SQLiteTokenStore.open(.file(folder.storePath), application: "app")
        for token in tokens { try await plain.save(token) }
        try await plain.delete("user-0")  // freed pages held a value too
        await plain.close()
        #expect(!Self.hits(in: folder.storePath, for: tokens).isEmpty, "the scan must see plaintext to begin with")

        let log = LogCapture()
        let sealed = try SQLiteTokenStore.open(
            .file(folder.storePath), application: "app", sealing: Self.secrets("secret-1"), logger: log.logger)
        #expect(try await sealed.load("user-7")?.refreshToken == tokens[7].refreshToken)
        #expect(try await sealed.count() == tokens.count - 1)
        #expect(log.all.contains { $0.contains("sealed 39 rows of application app") })
        let hits = Self.hits(in: folder.storePath, for: tokens)
        #expect(hits.isEmpty, "\(hits.prefix(3))")
        await sealed.close()
        #expect(Self.hits(in: folder.storePath, for: tokens).isEmpty)
    }

    @Test func anotherSecretIsRefusedAndNothingChanges() async throws {
        let folder = try TemporaryFolder("sealed-store")
        let first = try SQLiteTokenStore.open(
            .file(folder.storePath), application: "app", sealing: Self.secrets("secret-1"))
        for token in Self.tokens(5, seed: 2) { try await first.save(token) }
        await first.close()
        let before = ["", "-wal"].map { bytes(of: folder.storePath + $0) }
        for attempt in [Self.secrets("secret-2"), Self.secrets("secret-2", previous: "secret-3")] {
            do {
                _ = try SQLiteTokenStore.open(.file(folder.storePath), application: "app", sealing: attempt)
                Issue.record("a store sealed with another secret was opened")
            } catch {
                #expect(error.kind == .wrongKey)
                #expect(!error.message.contains("\n") && error.message.contains("another client-secret"))
                #expect(!error.message.contains("secret-1") && !error.message.contains("secret-2"))
            }
        }
        #expect(throws: StoreError.self) { try SQLiteTokenStore.open(.file(folder.storePath), application: "app") }
        #expect(["", "-wal"].map { bytes(of: folder.storePath + $0) } == before)
    }

    @Test func aRotationReSealsEveryRowUnderTheNewSecret() async throws {
        let folder = try TemporaryFolder("sealed-store")
        let tokens = Self.tokens(10, seed: 3)
        let old = try SQLiteTokenStore.open(
            .file(folder.storePath), application: "app", sealing: Self.secrets("secret-1"))
        for token in tokens { try await old.save(token) }
        let otherApplication = try SQLiteTokenStore.open(
            .file(folder.storePath), application: "other", sealing: Self.secrets("other-secret"))
        try await otherApplication.save(sampleToken("user-0", access: "other-access-0", refresh: "other-refresh-0"))

        let rotating = try SQLiteTokenStore.open(
            .file(folder.storePath), application: "app", sealing: Self.secrets("secret-2", previous: "secret-1"))
        #expect(Set(try await rotating.list().map(\.refreshToken)) == Set(tokens.map(\.refreshToken)))
        // The agent still running with the old secret may no longer write: its values would open for nobody.
        await #expect(throws: StoreError.self) { try await old.save(sampleToken("user-1")) }
        await rotating.close()
        await old.close()

        let renewed = try SQLiteTokenStore.open(
            .file(folder.storePath), application: "app", sealing: Self.secrets("secret-2"))
        for token in tokens { #expect(try await renewed.load(token.key)?.accessToken == token.accessToken) }
        #expect(throws: StoreError.self) {
            try SQLiteTokenStore.open(.file(folder.storePath), application: "app", sealing: Self.secrets("secret-1"))
        }
        // The other application's rows were left as they were.
        #expect(try await otherApplication.load("user-0")?.accessToken == "other-access-0")
        await otherApplication.close()
        await renewed.close()
    }

    @Test func aValueMovedToAnotherRowDoesNotOpenAndNothingIsMarked() async throws {
        let folder = try TemporaryFolder("sealed-store")
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: "app", sealing: Self.secrets("secret-1"))
        let tokens = Self.tokens(3, seed: 4)
        for token in tokens { try await store.save(token) }
        let raw = try SQLiteConnection(path: folder.storePath, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        try raw.execute(
            """
            UPDATE tokens SET refresh_token = (SELECT refresh_token FROM tokens WHERE key = 'user-0'),
                access_token = (SELECT access_token FROM tokens WHERE key = 'user-0')
            WHERE key = 'user-1'
            """)
        raw.close()
        await #expect(throws: StoreError.self) { try await store.load("user-1") }
        do { _ = try await store.load("user-1") } catch {
            #expect(error.kind == .sealing && error.message.contains("user-1"))
        }
        #expect(try await store.list().map(\.key) == ["user-0", "user-2"])
        await #expect(throws: StoreError.self) {
            try await store.markNeedsReauth("user-1", rejectedRefreshToken: tokens[0].refreshToken)
        }
        #expect(try await store.load("user-0")?.needsReauth == false)
        await store.close()
        let reader = try SQLiteConnection(path: folder.storePath, flags: 0x1 /* SQLITE_OPEN_READONLY */)
        #expect(try reader.firstColumn("SELECT needs_reauth FROM tokens ORDER BY key") == ["0", "0", "0"])
        reader.close()
    }

    @Test func aForgottenKeyLeavesNoTraceInTheFiles() async throws {
        let folder = try TemporaryFolder("sealed-store")
        try TestEvidence.exclude(
            folder, because: "a forgotten key leaves no trace even unsealed: the others stay plaintext")
        let store = try SQLiteTokenStore.open(.file(folder.storePath), application: "app")
        let tokens = Self.tokens(3, seed: 5)
        for token in tokens { try await store.save(token) }
        #expect(try await store.delete("user-1"))
        let hits = Self.hits(in: folder.storePath, for: [tokens[1]])
        #expect(hits.isEmpty, "\(hits.prefix(3))")
        #expect(try await store.load("user-2")?.refreshToken == tokens[2].refreshToken)
        await store.close()
    }
}
