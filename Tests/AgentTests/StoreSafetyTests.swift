import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import TokenStore
import WireFormats

#if canImport(Glibc)
    import Glibc
#endif

/// The store's promises, checked through the real binary: modes, refusal, corruption, and SIGKILL at
/// random moments during refreshes.
@Suite struct StoreSafetyTests {
    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    @Test(arguments: ["000", "022", "077"])
    func newStoreIsPrivateWhateverTheUmask(umask: String) async throws {
        let folder = try TemporaryFolder()
        let store = folder.file("state/nested/tokens.sqlite3")
        let agent = try AgentProcess(arguments: ["--store", store], umask: umask)
        _ = try await agent.call(
            id: 1, "storeToken",
            ["key": "k", "accessToken": "a", "refreshToken": "r", "expiresAt": "2030-01-01T00:00:00Z"])
        #expect(try mode(store) & 0o777 == 0o600)
        #expect(try mode(folder.file("state/nested")) & 0o777 == 0o700)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: store + suffix) {
            #expect(try mode(store + suffix) & 0o077 == 0, "\(suffix) is readable by others")
        }
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func aGroupReadableStoreIsRefusedWithAClearMessage() async throws {
        let folder = try TemporaryFolder()
        let store = folder.file("tokens.sqlite3")
        let first = try AgentProcess(arguments: ["--store", store])
        _ = try await first.call(id: 1, "ping")
        first.closeInput()
        _ = try await first.waitForExit()
        chmod(store, 0o640)
        let agent = try AgentProcess(arguments: ["--store", store])
        #expect(try await agent.waitForExit() != 0)
        #expect(agent.stderr.contains(store))
        #expect(agent.stderr.contains("chmod"))
    }

    @Test func aCorruptStoreIsMovedAsideNotOverwritten() async throws {
        let folder = try TemporaryFolder()
        let store = folder.file("tokens.sqlite3")
        let garbage = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        _ = FileManager.default.createFile(atPath: store, contents: garbage, attributes: [.posixPermissions: 0o600])

        let strict = try AgentProcess(arguments: ["--store", store, "--strict-store"])
        #expect(try await strict.waitForExit() != 0)
        #expect(FileManager.default.contents(atPath: store) == garbage)

        let agent = try AgentProcess(arguments: ["--store", store])
        _ = try await agent.call(
            id: 1, "storeToken",
            ["key": "k", "accessToken": "a", "refreshToken": "r", "expiresAt": "2030-01-01T00:00:00Z"])
        let aside = try FileManager.default.contentsOfDirectory(atPath: folder.url.path).filter {
            $0.hasPrefix("tokens.sqlite3.corrupt-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm")
        }
        #expect(aside.count == 1)
        #expect(FileManager.default.contents(atPath: folder.file(aside.first ?? "")) == garbage)
        #expect(agent.stderr.lowercased().contains("corrupt") || agent.stderr.lowercased().contains("moved"))
    }

    /// The store file deleted, then replaced (`mv`) under a running agent: while no store is at the path every
    /// write answers storageError (never success into an unlinked file); once one is there the agent uses it,
    /// and the tokens of the file it let go are copied aside (issue 12, class 4).
    @Test func aStoreDeletedOrReplacedUnderTheAgentIsNeverWrittenBlind() async throws {
        let folder = try TemporaryFolder()
        let store = folder.file("state/tokens.sqlite3")
        func storeToken(_ id: Int, _ key: String) -> JSONValue {
            [
                "key": .string(key), "accessToken": .string("a-\(id)"), "refreshToken": .string("r-\(id)"),
                "expiresAt": "2030-01-01T00:00:00Z",
            ]
        }
        let agent = try AgentProcess(arguments: ["--store", store])
        let noApplication = ""  // the agent runs without a client id: its rows belong to no application
        #expect(try await agent.call(id: 1, "storeToken", storeToken(1, "before"))["result"] != nil)
        for suffix in ["", "-wal", "-shm"] { unlink(store + suffix) }
        let refused = try await agent.call(id: 2, "storeToken", storeToken(2, "while-deleted"))
        #expect(refused["error"]?["data"]?["kind"] == "storageError", "\(refused)")
        #expect(agent.stderr.contains("was deleted or moved away while the agent was running"))
        #expect(!FileManager.default.fileExists(atPath: store))
        // A valid store moved over the path: the agent switches to it.
        let other = folder.file("other/tokens.sqlite3")
        let builder = try SQLiteTokenStore.open(.file(other), application: noApplication)
        try await builder.save(
            StoredToken(
                key: "restored", accessToken: "a-x", refreshToken: "r-x", expiresAt: Date(timeIntervalSinceNow: 3600),
                refreshExpiresAt: nil, scope: nil, lastRefreshedAt: nil))
        await builder.close()
        #expect(rename(other, store) == 0)
        #expect(try await agent.call(id: 3, "storeToken", storeToken(3, "after"))["result"] != nil)
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
        let rows = try await SQLiteTokenStore.open(
            .file(store), application: noApplication, strict: true
        ).list()
        // The token refused while no store was there was kept in memory and written once one was back.
        #expect(rows.map(\.key) == ["after", "restored", "while-deleted"])
        let copies = try FileManager.default.contentsOfDirectory(atPath: folder.file("state")).filter {
            $0.contains(".orphaned-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm")
        }
        #expect(copies.count == 1)
        let copied = try await SQLiteTokenStore.open(
            .file(folder.file("state/" + (copies.first ?? ""))), application: noApplication,
            strict: true
        ).list()
        #expect(copied.map(\.key) == ["before"])
        #expect(!agent.stderr.contains("a-1") && !agent.stderr.contains("r-1"))
    }

    @Test func aSymlinkAtTheStorePathIsRefusedAtStart() async throws {
        let folder = try TemporaryFolder()
        let target = folder.file("open/target")
        try FileManager.default.createDirectory(
            atPath: folder.file("open"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        #expect(
            FileManager.default.createFile(atPath: target, contents: Data(), attributes: [.posixPermissions: 0o600]))
        let store = folder.file("tokens.sqlite3")
        #expect(symlink(target, store) == 0)
        let agent = try AgentProcess(arguments: ["--store", store])
        #expect(try await agent.waitForExit() != 0)
        #expect(agent.stderr.contains("refusing to use token store \(store): it is a symbolic link to \(target)"))
        #expect(FileManager.default.contents(atPath: target) == Data())
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.file("open")) == ["target"])
    }

    @Test(arguments: [0o644, 0o666, 0o640] as [Int])
    func aClientSecretFileOthersCanReadIsRefusedAtStart(mode: Int) async throws {
        let folder = try TemporaryFolder()
        let secret = folder.file("client-secret")
        #expect(
            FileManager.default.createFile(
                atPath: secret, contents: Data("s3cr3t\n".utf8), attributes: [.posixPermissions: mode]))
        let agent = try AgentProcess(arguments: ["--store", "memory", "--client-secret-file", secret])
        #expect(try await agent.waitForExit() != 0)
        #expect(agent.stderr.contains("refusing to use client secret file \(secret)"))
        #expect(agent.stderr.contains("run chmod 600 \(secret)"))
        #expect(!agent.stderr.contains("s3cr3t"))
    }

    /// SIGKILL at random moments while refreshes are in flight. After each kill: the store opens cleanly,
    /// every key still refreshes, and no access token the agent had handed out is older than what the store
    /// holds. The fake models Smartcar's grace for a just-used refresh token (a kill between Smartcar's
    /// answer and the commit leaves the old token stored, and it still works within the grace).
    @Test func killedAtRandomMomentsNoTokenIsLost() async throws {
        let kills = Int(ProcessInfo.processInfo.environment["AGENT_CRASH_KILLS"] ?? "") ?? 200
        var options = FakeSmartcar.Options()
        options.refreshReuse = .grace(60)
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        let folder = try TemporaryFolder()
        let store = folder.file("tokens.sqlite3")
        let keys = ["a", "b", "c"]
        let seeding = try AgentProcess(arguments: ["--store", store], environment: fake.agentEnvironment)
        for (index, key) in keys.enumerated() { try await seeding.storeExpiredKey(key, fake: fake, id: index + 1) }
        seeding.closeInput()
        #expect(try await seeding.waitForExit() == 0)

        var random = SeededGenerator(seed: 0xC0FFEE)
        var handedOut: [String: [String]] = [:]  // per key, access tokens in the order the agent answered them
        for round in 0..<kills {
            let agent = try AgentProcess(arguments: ["--store", store], environment: fake.agentEnvironment)
            var id = 0
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                for key in keys {
                    id += 1
                    agent.send(id: id, "getToken", ["key": .string(key), "forceRefresh": true])
                }
            }
            // Let it get somewhere: until a random number of answers arrived, then kill mid-flight.
            let target = Int.random(in: 0...id, using: &random)
            try await agent.waitForResponses(count: target, timeout: .seconds(30))
            kill(agent.pid, SIGKILL)
            _ = try await agent.waitForExit()
            for message in agent.inbox.messages {
                guard let n = message["id"]?.intValue, let token = message["result"]?["accessToken"]?.stringValue else {
                    #expect(message["error"] == nil, "round \(round): \(message)")
                    continue
                }
                handedOut[keys[Int(n - 1) % keys.count], default: []].append(token)
            }
            #expect(!agent.stderr.contains("corrupt"), "round \(round)")
            // What was handed out is never newer than what is stored.
            let rows = try await SQLiteTokenStore.open(
                .file(store), application: FakeSmartcar.Options().clientID, strict: true,
                sealing: FakeSmartcar.Options().storeSecrets
            ).list()
            for row in rows {
                if let last = handedOut[row.key]?.last, let index = handedOut[row.key]?.lastIndex(of: row.accessToken) {
                    #expect(
                        handedOut[row.key]![index] == last, "round \(round): key \(row.key) went back to an older token"
                    )
                }
            }
            #expect(rows.count == keys.count)
        }
        // Every key still refreshes.
        let agent = try AgentProcess(arguments: ["--store", store], environment: fake.agentEnvironment)
        for (index, key) in keys.enumerated() {
            let reply = try await agent.call(id: index + 1, "getToken", ["key": .string(key), "forceRefresh": true])
            #expect(reply["result"] != nil, "key \(key): \(reply)")
        }
    }
}
