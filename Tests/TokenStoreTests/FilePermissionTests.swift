import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct FilePermissionTests {
    @Test func newStoreIsPrivate() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        try await store.save(sampleToken())
        let path = folder.storePath
        #expect(mode(of: folder.path + "/state") == 0o700)
        #expect(mode(of: path) == 0o600)
        #expect(mode(of: path + "-wal") == 0o600)
        #expect(mode(of: path + "-shm") == 0o600)
        #expect(mode(of: path + ".lock") == 0o600)
    }

    // umask is process-wide and tests run in parallel, so each umask runs in a child process (exit test).
    @Test func newStoreIsPrivateUnderUmask000() async throws {
        let result = try #require(
            await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) {
                print(await createStoreAndCheckModes(umask: 0o000))
            })
        #expect(String(decoding: result.standardOutputContent, as: UTF8.self) == "all private\n")
    }

    @Test func newStoreIsPrivateUnderUmask022() async throws {
        let result = try #require(
            await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) {
                print(await createStoreAndCheckModes(umask: 0o022))
            })
        #expect(String(decoding: result.standardOutputContent, as: UTF8.self) == "all private\n")
    }

    @Test func groupReadableFileIsRefusedAndLeftAlone() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        try await SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
            .close()
        chmod(folder.storePath, 0o640)
        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
        }
        #expect(error.kind == .permissions)
        #expect(
            error.message
                == "refusing to use token store \(folder.storePath): it is readable by group/others (mode 0640); run chmod 600 \(folder.storePath)"
        )
        #expect(mode(of: folder.storePath) == 0o640)
    }

    @Test func groupWritableFolderIsRefused() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        try await SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
            .close()
        let state = folder.path + "/state"
        chmod(state, 0o720)
        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
        }
        #expect(error.kind == .permissions)
        #expect(
            error.message
                == "refusing to use token store folder \(state): it is writable by group/others (mode 0720); run chmod 700 \(state)"
        )
    }

    /// A store directly in a shared folder like /tmp: the advice is a private folder, never `chmod 700 /tmp`.
    @Test func sharedFolderIsRefusedWithAdviceForAPrivateOne() throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let shared = folder.path + "/shared"
        #expect(mkdir(shared, 0o700) == 0)
        chmod(shared, 0o1777)
        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(.file(shared + "/tokens.sqlite3"), application: testApplication)
        }
        #expect(error.kind == .permissions)
        #expect(
            error.message
                == "refusing to use token store folder \(shared): it is a folder other users can write in (mode 1777); "
                + "use a private folder of your own instead (created with mkdir -m 700), never chmod a shared one")
        #expect(mode(of: shared) == 0o1777)
    }

    @Test func worldReadableWalIsRefused() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        try await SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
            .close()
        let wal = folder.storePath + "-wal"
        #expect(FileManager.default.createFile(atPath: wal, contents: Data(), attributes: [.posixPermissions: 0o644]))
        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
        }
        #expect(error.kind == .permissions)
        #expect(error.message.contains("\(wal): it is readable by group/others (mode 0644)"))
    }

    @Test(.enabled(if: geteuid() == 0, "chown needs root"))
    func fileOwnedByAnotherUserIsRefused() async throws {
        let folder = try TemporaryFolder("tokenstore-test")
        try await SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
            .close()
        #expect(chown(folder.storePath, 65534, 65534) == 0)
        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
        }
        #expect(error.kind == .permissions)
        #expect(error.message.contains("owned by uid 65534, not by this user (uid 0)"))
    }

    @Test func pathNamingAFolderIsRefused() throws {
        let folder = try TemporaryFolder("tokenstore-test")
        let error = try #require(throws: StoreError.self) {
            try SQLiteTokenStore.open(
                .file(folder.path + "/state/"), application: testApplication, sealing: testSecrets)
        }
        #expect(error.kind == .io)
    }
}

/// In a child process: sets `umask`, creates a store, writes a row and describes the modes it finds:
/// "all private", or what is wrong.
func createStoreAndCheckModes(umask mask: mode_t) async -> String {
    umask(mask)
    do {
        let folder = try TemporaryFolder("tokenstore-test")
        let store = try SQLiteTokenStore.open(
            .file(folder.storePath), application: testApplication, sealing: testSecrets)
        try await store.save(sampleToken())
        let expected: [(String, UInt32)] = [
            (folder.path + "/state", 0o700), (folder.storePath, 0o600), (folder.storePath + "-wal", 0o600),
            (folder.storePath + "-shm", 0o600), (folder.storePath + ".lock", 0o600),
        ]
        let wrong = expected.filter { mode(of: $0.0) != $0.1 }.map { path, wanted in
            "\(path): mode \(String(mode(of: path) ?? 0, radix: 8)), wanted \(String(wanted, radix: 8))"
        }
        return wrong.isEmpty ? "all private" : wrong.joined(separator: "; ")
    } catch {
        return "\(error)"
    }
}
