import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct CorruptStoreTests {
    /// Puts `contents` where the store expects its file, in a private folder, as a crash or a bad copy would.
    private func plant(_ contents: [UInt8], in folder: TemporaryFolder) {
        mkdir(folder.path + "/state", 0o700)
        _ = FileManager.default.createFile(
            atPath: folder.storePath, contents: Data(contents), attributes: [.posixPermissions: 0o600])
    }

    private func garbage() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// A closed store file holding `rows` rows.
    private func makeStore(in folder: TemporaryFolder, rows: Int) async throws {
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        try await store.bulkInsertForBenchmark(
            (0..<rows).map { sampleToken("user-\($0)", access: "a\($0)", refresh: "r\($0)") })
        await store.close()
    }

    private func asideFiles(_ folder: TemporaryFolder) -> [String] {
        folder.entries(of: folder.path + "/state").filter { $0.hasPrefix("tokens.sqlite3.corrupt-") }
    }

    @Test func garbageIsMovedAsideByteForByteAndAFreshStoreWorks() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let original = garbage()
        plant(original, in: folder)
        let log = LogCapture()
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets, logger: log.logger)

        let aside = try #require(asideFiles(folder).first)
        #expect(aside.wholeMatch(of: /tokens\.sqlite3\.corrupt-\d{8}T\d{6}Z/) != nil)
        #expect(bytes(of: folder.path + "/state/" + aside) == original)
        #expect(mode(of: folder.path + "/state/" + aside) == 0o600)
        let errors = log.lines(at: .error)
        #expect(errors.count == 1)
        #expect(errors.first?.contains("file is not a database") == true)
        #expect(errors.first?.contains(aside) == true)

        try await store.save(sampleToken())
        #expect(try await store.load("user-1")?.generation == 1)
        await store.close()
        // The fresh store is valid: opening again moves nothing.
        _ = try SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
        #expect(asideFiles(folder).count == 1)
    }

    @Test func strictRefusesGarbageAndTouchesNothing() throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let original = garbage()
        plant(original, in: folder)
        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(
                .file(folder.storePath), application: testApplication, strict: true, sealing: testSecrets)
        }
        #expect(error.kind == .corrupt)
        #expect(error.message.contains(folder.storePath))
        #expect(bytes(of: folder.storePath) == original)
        // Only the open lock (never holding data) may appear beside it.
        #expect(folder.entries(of: folder.path + "/state") == ["tokens.sqlite3", "tokens.sqlite3.lock"])
    }

    @Test(arguments: [false, true])  // a small file (quick_check runs) and one past the quick_check limit
    func truncatedStoreIsDetectedAtOpen(large: Bool) async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        try await makeStore(in: folder, rows: large ? 20_000 : 300)
        let whole = try #require(bytes(of: folder.storePath))
        #expect((whole.count > StoreOpener.quickCheckLimitBytes) == large)
        let truncated = Array(whole.prefix(whole.count / 2))
        #expect(truncate(folder.storePath, off_t(truncated.count)) == 0)

        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(
                .file(folder.storePath), application: testApplication, strict: true, sealing: testSecrets)
        }
        #expect(error.kind == .corrupt)
        #expect(bytes(of: folder.storePath) == truncated)

        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        let aside = try #require(asideFiles(folder).first)
        #expect(bytes(of: folder.path + "/state/" + aside) == truncated)
        #expect(try await store.count() == 0)
    }

    @Test func futureSchemaIsRefusedStrictlyAndUntouched() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        try await makeStore(in: folder, rows: 3)
        try rawSQL(folder.storePath, "UPDATE schema_version SET version = 99")
        let before = try #require(bytes(of: folder.storePath))

        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(
                .file(folder.storePath), application: testApplication, strict: true, sealing: testSecrets)
        }
        #expect(error.kind == .futureSchema)
        #expect(error.message.contains("schema version 99"))
        #expect(error.message.contains("newer than version \(Schema.currentVersion)"))
        #expect(bytes(of: folder.storePath) == before)
        #expect(folder.entries(of: folder.path + "/state") == ["tokens.sqlite3", "tokens.sqlite3.lock"])
    }

    @Test func futureSchemaIsMovedAsideWithoutStrict() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        try await makeStore(in: folder, rows: 3)
        try rawSQL(folder.storePath, "UPDATE schema_version SET version = 99")
        let before = try #require(bytes(of: folder.storePath))
        let log = LogCapture()

        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets, logger: log.logger)
        #expect(try await store.count() == 0)
        let aside = try #require(asideFiles(folder).first)
        #expect(bytes(of: folder.path + "/state/" + aside) == before)
        #expect(log.lines(at: .error).first?.contains("schema version 99") == true)
    }

    @Test func anotherProgramsDatabaseIsMovedAside() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        plant([], in: folder)
        try rawSQL(folder.storePath, "CREATE TABLE photos (id INTEGER PRIMARY KEY)")
        let log = LogCapture()
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets, logger: log.logger)
        #expect(asideFiles(folder).count == 1)
        #expect(log.lines(at: .error).first?.contains("not a token store (tables: photos)") == true)
        try await store.save(sampleToken())
    }

    @Test func emptyFileBecomesAStore() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        plant([], in: folder)
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, strict: true, sealing: testSecrets)
        try await store.save(sampleToken())
        #expect(asideFiles(folder).isEmpty)
    }

    @Test func secondMoveAsideInTheSameSecondGetsItsOwnName() throws {
        let folder = try TemporaryFolder("tokenstore-test")
        plant(garbage(), in: folder)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let first = try StoreFiles.moveAside(folder.storePath, now: now)
        plant(garbage(), in: folder)
        let second = try StoreFiles.moveAside(folder.storePath, now: now)
        #expect(first == folder.storePath + ".corrupt-20231114T221320Z")
        #expect(second == folder.storePath + ".corrupt-20231114T221320Z-2")
    }
}
