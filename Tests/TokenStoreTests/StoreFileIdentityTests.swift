import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

#if canImport(Glibc)
    import Glibc
#endif

/// The store's file deleted, moved away or replaced (`rm`, `mv`) under an open store, and symbolic links at
/// the store's paths (issue 12, class 4).
@Suite struct StoreFileIdentityTests {
    /// Random sequences of saves against an open store while its file is deleted (with or without its -wal/-shm),
    /// moved away, replaced by another valid store, or re-created by another opener. Checked after every step:
    /// a save answers success exactly when a valid store is at the path, and then it is in the file at the path
    /// (read by a fresh connection); at the end, every value ever saved successfully is at the path or in an
    /// `.orphaned-` copy (nothing went into an unlinked file and was lost).
    @Test(arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
    func savesLandInTheFileAtThePathWhateverHappensToIt(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let folder = try TemporaryFolder("tokenstore-identity")
        let path = folder.storePath
        let logs = LogCapture()
        let store = try SQLiteTokenStore.open(
            .file(path), application: testApplication, sealing: testSecrets, logger: logs.logger)
        /// Every store file the test knows (by number), what it holds, which is at the path and which the store
        /// under test has open.
        var files: [[String: String]] = [[:]]
        var atPath: Int? = 0
        var everOpened: Set<Int> = [0]
        var counter = 0
        func fresh(_ key: String) -> StoredToken {
            counter += 1
            return sampleToken(key, access: "access-\(seed)-\(counter)", refresh: "refresh-\(seed)-\(counter)")
        }
        for step in 0..<40 {
            let keys = ["a", "b", "c", "d"]
            switch Int.random(in: 0..<10, using: &random) {
            case 0:
                for suffix in random.chance(0.5) ? [""] : ["", "-wal", "-shm"] { unlink(path + suffix) }
                atPath = nil
            case 1:
                rename(path, folder.file("moved-\(step).sqlite3"))
                atPath = nil
            case 2:
                // Another valid store, built elsewhere and moved over the path.
                let other = folder.file("other-\(step)/tokens.sqlite3")
                let builder = try SQLiteTokenStore.open(
                    .file(other), application: testApplication, sealing: testSecrets)
                var content: [String: String] = [:]
                for key in keys where random.chance(0.5) {
                    let token = fresh(key)
                    try await builder.save(token)
                    content[key] = token.accessToken
                }
                await builder.close()
                #expect(rename(other, path) == 0)
                files.append(content)
                atPath = files.count - 1
            case 3 where atPath == nil:
                // Another agent starting on the missing path creates an empty store and saves a key.
                let other = try SQLiteTokenStore.open(.file(path), application: testApplication, sealing: testSecrets)
                let token = fresh("e")
                try await other.save(token)
                await other.close()
                files.append([token.key: token.accessToken])
                atPath = files.count - 1
            default:
                let token = fresh(keys.randomElement(using: &random)!)
                let saved: Result<Void, StoreError>
                do { try await store.save(token); saved = .success(()) } catch { saved = .failure(error) }
                switch saved {
                case .success:
                    let current = try #require(
                        atPath, "step \(step): a save answered success with no store at the path")
                    files[current][token.key] = token.accessToken
                    everOpened.insert(current)
                case .failure(let error):
                    #expect(atPath == nil, "step \(step): a save failed with a valid store at the path: \(error)")
                    #expect(error.kind == .io)
                }
                if let atPath { #expect(try await contents(of: path) == files[atPath], "step \(step)") }
            }
        }
        await store.close()
        // Nothing the store held went down with an unlinked file: each file it had open is still at the path,
        // was moved away whole, or was copied aside.
        let state = StoreFiles.folder(of: path)
        var kept: [[String: String]] = []
        if atPath != nil { kept.append(try await contents(of: path)) }
        for name in folder.entries(of: state)
        where name.contains(".orphaned-") && !name.hasSuffix("-wal") && !name.hasSuffix("-shm") {
            kept.append(try await contents(of: state + "/" + name))
        }
        for name in folder.entries(of: folder.path) where name.hasPrefix("moved-") && name.hasSuffix(".sqlite3") {
            kept.append(try await contents(of: folder.file(name)))
        }
        for file in everOpened {
            #expect(kept.contains(files[file]), "the tokens of store file \(file) were lost: \(files[file])")
        }
        #expect(!logs.all.contains { $0.contains("access-") || $0.contains("refresh-") })
    }

    @Test func deletedStoreAnswersAnErrorThenUsesTheStoreAnotherAgentCreates() async throws {
        let folder = try TemporaryFolder("tokenstore-identity")
        let path = folder.storePath
        let logs = LogCapture()
        let store = try SQLiteTokenStore.open(
            .file(path), application: testApplication, sealing: testSecrets, logger: logs.logger)
        try await store.save(sampleToken("kept"))
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        let error = try await #require(throws: StoreError.self) { try await store.save(sampleToken("lost")) }
        #expect(error.kind == .io)
        #expect(
            error.message.hasPrefix("the token store \(path) was deleted or moved away while the agent was running"))
        #expect(
            logs.lines(at: .error).contains { $0.contains("was deleted or moved away while the agent was running") })
        #expect(!FileManager.default.fileExists(atPath: path), "nothing re-created the deleted store")
        // Its tokens were copied aside before the deleted file was closed.
        let copy = try #require(folder.entries(of: folder.file("state")).first { $0.contains(".orphaned-") })
        #expect(try await contents(of: folder.file("state/" + copy)) == ["kept": "access-secret-1"])
        #expect(mode(of: folder.file("state/" + copy)) == 0o600)
        // Another agent starts on the path: the store uses that file from then on.
        try await SQLiteTokenStore.open(.file(path), application: testApplication, sealing: testSecrets).close()
        try await store.save(sampleToken("new"))
        #expect(try await contents(of: path) == ["new": "access-secret-1"])
        await store.close()
    }

    @Test(arguments: ["", "-wal", "-shm", "-journal", ".lock"])
    func symlinkAtTheStorePathIsRefused(suffix: String) async throws {
        let folder = try TemporaryFolder("tokenstore-symlink")
        let path = folder.storePath
        try await SQLiteTokenStore.open(.file(path), application: testApplication, sealing: testSecrets).close()
        if suffix == "" { unlink(path) }
        let elsewhere = folder.file("elsewhere")
        mkdir(elsewhere, 0o755)
        let target = elsewhere + "/target"
        #expect(
            FileManager.default.createFile(atPath: target, contents: Data(), attributes: [.posixPermissions: 0o600]))
        unlink(path + suffix)
        #expect(symlink(target, path + suffix) == 0)
        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(.file(path), application: testApplication, sealing: testSecrets)
        }
        #expect(error.kind == .permissions)
        let what = suffix == ".lock" ? "token store lock file" : "token store"
        #expect(
            error.message
                == "refusing to use \(what) \(path + suffix): it is a symbolic link to \(target); give the real file's path instead, or move the file there"
        )
        #expect(bytes(of: target) == [], "the link's target was left alone")
        #expect(folder.entries(of: elsewhere) == ["target"], "nothing was created beside the target")
    }

    @Test func storeReplacedByASymlinkWhileOpenIsRefused() async throws {
        let folder = try TemporaryFolder("tokenstore-symlink")
        let path = folder.storePath
        let store = try SQLiteTokenStore.open(.file(path), application: testApplication, sealing: testSecrets)
        try await store.save(sampleToken())
        let other = folder.file("other/tokens.sqlite3")
        try await SQLiteTokenStore.open(.file(other), application: testApplication, sealing: testSecrets).close()
        unlink(path)
        #expect(symlink(other, path) == 0)
        let error = try await #require(throws: StoreError.self) { try await store.save(sampleToken("b")) }
        #expect(error.kind == .permissions)
        #expect(error.message.contains("is a symbolic link"))
        await store.close()
    }

    /// Every row of the store at `path` (key → access token), read through a fresh, strict open.
    private func contents(of path: String) async throws -> [String: String] {
        let store = try SQLiteTokenStore.open(
            .file(path), application: testApplication, strict: true, sealing: testSecrets)
        let rows = try await store.list()
        await store.close()
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.key, $0.accessToken) })
    }
}
