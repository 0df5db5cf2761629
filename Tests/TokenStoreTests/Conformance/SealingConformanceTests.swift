import AgentSupport
import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

/// Sealing, the same on every backend that keeps tokens somewhere (SQLite's files, PostgreSQL's tables): nothing
/// readable in what the place stores, a plaintext store sealed in place, another secret refused before anything is
/// written, a rotation that re-seals under the new secret, and values that open only in their own row.
@Suite struct SealingConformanceTests {
    static let backends = Backend.all.filter { $0.name != Backend.memory.name }

    /// Random tokens long enough for the scanner's 16-byte windows.
    static func tokens(_ count: Int, seed: UInt64) -> [StoredToken] {
        var generator = SeededGenerator(seed: seed)
        func value(_ prefix: String) -> String {
            prefix + "-" + (0..<40).map { _ in String(UInt8.random(in: 0...15, using: &generator), radix: 16) }.joined()
        }
        return (0..<count).map { sampleToken("user-\($0)", access: value("access"), refresh: value("refresh")) }
    }

    /// Every token value, and every 16-byte fragment of one, found in what `place` stores.
    static func hits(in place: BackendPlace, for tokens: [StoredToken]) throws -> [SecretScanner.Hit] {
        var scanner = SecretScanner()
        for token in tokens {
            scanner.add("access token", token.accessToken)
            scanner.add("refresh token", token.refreshToken)
        }
        return try place.raw!.storedBytes().flatMap { source, bytes in scanner.scan(bytes, source: source) }
    }

    @Test(arguments: backends)
    func aPlaintextStoreIsSealedInPlaceLeavingNoValueBehind(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let tokens = Self.tokens(40, seed: 0x5EA1_0001)
        let plain = try place.open("app", sealing: nil)
        for token in tokens { try await plain.save(token) }
        #expect(try await plain.delete("user-0"))  // a freed page or dead row held its values too
        await plain.close()
        #expect(try !Self.hits(in: place, for: tokens).isEmpty, "the scan must see plaintext to begin with")

        let log = LogCapture()
        let sealed = try place.open("app", sealing: secrets("secret-1"), logger: log.logger)
        #expect(try await sealed.load("user-7")?.refreshToken == tokens[7].refreshToken)
        #expect(try await sealed.count() == tokens.count - 1)
        #expect(log.all.contains { $0.contains("sealed 39 rows of application app") })
        await sealed.close()
        let hits = try Self.hits(in: place, for: tokens)
        #expect(hits.isEmpty, "\(hits.prefix(3))")
    }

    @Test(arguments: backends)
    func anotherSecretIsRefusedBeforeAnythingIsWritten(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let first = try place.open("app", sealing: secrets("secret-1"))
        for token in Self.tokens(5, seed: 2) { try await first.save(token) }
        await first.close()
        let before = try place.raw!.storedBytes()
        for attempt in [secrets("secret-2"), secrets("secret-2", previous: "secret-3"), nil] {
            do {
                _ = try place.open("app", sealing: attempt)
                Issue.record("a store sealed with another secret was opened")
            } catch let error as StoreError {
                #expect(error.kind == .wrongKey)
                #expect(!error.message.contains("\n"))
                #expect(!error.message.contains("secret-1") && !error.message.contains("secret-2"))
            }
        }
        #expect(try place.raw!.storedBytes() == before)
    }

    @Test(arguments: backends)
    func aRotationReSealsEveryRowUnderTheNewSecret(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let tokens = Self.tokens(10, seed: 3)
        let old = try place.open("app", sealing: secrets("secret-1"))
        for token in tokens { try await old.save(token) }
        let otherApplication = try place.open("other", sealing: secrets("other-secret"))
        try await otherApplication.save(sampleToken("user-0", access: "other-access-0", refresh: "other-refresh-0"))

        let rotating = try place.open("app", origin: "origin-2", sealing: secrets("secret-2", previous: "secret-1"))
        #expect(Set(try await rotating.list().map(\.refreshToken)) == Set(tokens.map(\.refreshToken)))
        // The agent still running with the old secret may no longer write: its values would open for nobody.
        await #expect(throws: StoreError.self) { try await old.save(sampleToken("user-1")) }
        await rotating.close()
        await old.close()

        let renewed = try place.open("app", sealing: secrets("secret-2"))
        for token in tokens { #expect(try await renewed.load(token.key)?.accessToken == token.accessToken) }
        #expect(throws: StoreError.self) { try place.open("app", sealing: secrets("secret-1")) }
        #expect(try await otherApplication.load("user-0")?.accessToken == "other-access-0")
        await otherApplication.close()
        await renewed.close()
    }

    @Test(arguments: backends)
    func aValueMovedToAnotherRowDoesNotOpenAndNothingIsMarked(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let store = try place.open("app", sealing: secrets("secret-1"))
        let tokens = Self.tokens(3, seed: 4)
        for token in tokens { try await store.save(token) }
        _ = try place.raw!.execute(
            """
            UPDATE tokens SET refresh_token = (SELECT refresh_token FROM tokens WHERE key = 'user-0'),
                access_token = (SELECT access_token FROM tokens WHERE key = 'user-0')
            WHERE key = 'user-1'
            """)
        do {
            _ = try await store.load("user-1")
            Issue.record("a value moved from another row opened")
        } catch {
            #expect(error.kind == .sealing && error.message.contains("user-1"))
        }
        #expect(try await store.list().map(\.key) == ["user-0", "user-2"])
        await #expect(throws: StoreError.self) {
            try await store.markNeedsReauth("user-1", rejectedRefreshToken: tokens[0].refreshToken)
        }
        // A value moved to another column of its own row does not open either.
        _ = try place.raw!.execute("UPDATE tokens SET access_token = refresh_token WHERE key = 'user-2'")
        await #expect(throws: StoreError.self) { try await store.load("user-2") }
        await store.close()
        #expect(try place.raw!.execute("SELECT count(*) FROM tokens WHERE needs_reauth").contains("0"))
    }
}

extension SealingConformanceTests {
    /// An agent still on the old secret with a refresh in flight (its lease held) when another starts the rotation:
    /// the rotation waits for that refresh's commit, so its rotated tokens are stored and then re-sealed, never lost.
    @Test(arguments: backends)
    func aRotationWaitsForARefreshInFlight(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let old = try place.open("app", sealing: secrets("secret-1"))
        try await old.save(sampleToken("user-1"))
        guard
            case .acquired(let row?) = try await old.acquireLease(
                "user-1", owner: "old-agent", duration: 3600, now: Date(), holderIsGone: { _ in false })
        else { throw StoreError(.io, "the lease was not taken") }

        let (lines, logged) = AsyncStream.makeStream(of: String.self)
        let logger = Logger(label: "rotation", level: .trace) { _, line in logged.yield(line) }
        // Opening blocks while it waits: on a thread of its own, not one of the cooperative pool's. The lease
        // outlasts any wait here, so it is this test's commit, not the lease's expiry, that lets the rotation on.
        let rotation = Task {
            defer { logged.finish() }
            return try await onOwnThread {
                try place.open(
                    "app", origin: "origin-2", sealing: secrets("secret-2", previous: "secret-1"), logger: logger)
            }
        }
        var waiting = false
        for await line in lines where line.contains("waiting for 1 refresh in flight") {
            waiting = true
            break
        }
        #expect(waiting, "the rotation went on without waiting for the refresh in flight")
        var rotated = row
        rotated.refreshToken = "refresh-rotated-while-re-sealing"
        let commit = try await old.commitRefresh(rotated, owner: "old-agent", replacing: row, now: Date())
        guard case .committed = commit else {
            Issue.record("the refresh in flight could not commit: \(commit)")
            return
        }
        let renewed = try await rotation.value
        #expect(try await renewed.load("user-1")?.refreshToken == "refresh-rotated-while-re-sealing")
        // Now re-sealed, the old agent can no longer take a lease: it refreshes nothing it could not store.
        await #expect(throws: StoreError.self) {
            try await old.acquireLease(
                "user-1", owner: "old-agent", duration: 30, now: Date(), holderIsGone: { _ in false })
        }
        await renewed.close()
        await old.close()
    }
}
