import AgentTestSupport
import Foundation
import Testing
import WireFormats

/// Sealing through the real binary: a copied store is useless with another client secret, the rotation procedure
/// of the README, and a value moved to another row.
@Suite struct SealedStoreAgentTests {
    static let application = "sealing-app"

    static func environment(_ secret: String, previous: String? = nil) -> [String: String] {
        var environment = ["SMARTCAR_CLIENT_ID": application, "SMARTCAR_CLIENT_SECRET": secret]
        environment["SMARTCAR_PREVIOUS_CLIENT_SECRET"] = previous
        return environment
    }

    static func token(_ key: String) -> JSONValue {
        [
            "key": .string(key), "accessToken": .string("access-\(key)-0123456789abcdef0123"),
            "refreshToken": .string("refresh-\(key)-0123456789abcdef0123"), "expiresAt": "2030-01-01T00:00:00Z",
        ]
    }

    /// Starts an agent on `store` that stores `keys`, then ends it.
    static func makeStore(_ store: String, secret: String, keys: [String]) async throws {
        let agent = try AgentProcess(arguments: ["--store", store], environment: environment(secret))
        for (index, key) in keys.enumerated() {
            let stored = try await agent.call(id: index + 1, "storeToken", token(key))
            #expect(stored["result"]?["key"] == .string(key))
        }
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }

    /// Every row of the store's tokens and sealing keys, each column as it is stored.
    static func rows(_ store: String) throws -> String {
        try sqlite(
            store,
            """
            SELECT key, application, hex(access_token), hex(refresh_token), generation, needs_reauth, expires_at
            FROM tokens ORDER BY key; SELECT * FROM sealing_keys;
            """)
    }

    static func sqlite(_ store: String, _ sql: String) throws -> String {
        let output = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sqlite3", store, sql]
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test func aCopiedStoreOpenedWithAnotherSecretIsRefusedInOneLineAndLeftAsItWas() async throws {
        let folder = try TemporaryFolder("sealed-agent")
        let original = folder.file("first/tokens.sqlite3")
        try await Self.makeStore(original, secret: "secret-one-abcdefghijklmnop", keys: ["car-1", "car-2"])
        let copy = folder.file("copy/tokens.sqlite3")
        try FileManager.default.createDirectory(
            atPath: folder.file("copy"), withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: original + suffix) {
            try FileManager.default.copyItem(atPath: original + suffix, toPath: copy + suffix)
        }
        // SQLite folds the WAL into the file when the refused agent closes it; the rows stay as they were.
        let rowsBefore = try Self.rows(copy)
        #expect(rowsBefore.split(separator: "\n").count == 3)

        let agent = try AgentProcess(
            arguments: ["--store", copy], environment: Self.environment("secret-two-abcdefghijklmnop"))
        #expect(try await agent.waitForExit() == 2)
        let lines = agent.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(agent.stderr)")
        #expect(agent.stderr.contains("was sealed for application \(Self.application) with another client-secret"))
        #expect(!agent.stderr.contains("secret-one") && !agent.stderr.contains("secret-two"))
        #expect(try Self.rows(copy) == rowsBefore)
    }

    /// The README's rotation procedure: start with the new secret and the previous one, then with the new one only.
    @Test func theRotationProcedureReSealsUnderTheNewSecret() async throws {
        let folder = try TemporaryFolder("sealed-agent")
        let store = folder.file("state/tokens.sqlite3")
        try await Self.makeStore(store, secret: "secret-one-abcdefghijklmnop", keys: ["car-1", "car-2"])
        let sealedBefore = try Self.sqlite(store, "SELECT hex(refresh_token) FROM tokens ORDER BY key")

        let rotating = try AgentProcess(
            arguments: ["--store", store],
            environment: Self.environment("secret-two-abcdefghijklmnop", previous: "secret-one-abcdefghijklmnop"))
        _ = try await rotating.call(id: 1, "ping")
        rotating.closeInput()
        #expect(try await rotating.waitForExit() == 0)
        #expect(rotating.stderr.contains("sealed 2 rows of application \(Self.application)"))
        let sealedAfter = try Self.sqlite(store, "SELECT hex(refresh_token) FROM tokens ORDER BY key")
        #expect(sealedAfter != sealedBefore && sealedAfter.split(separator: "\n").count == 2)

        let renewed = try AgentProcess(
            arguments: ["--store", store], environment: Self.environment("secret-two-abcdefghijklmnop"))
        let answer = try await renewed.call(id: 1, "getToken", ["key": "car-2"])
        #expect(answer["result"]?["accessToken"] == Self.token("car-2")["accessToken"])
        let status = try await renewed.call(id: 2, "status")
        #expect(status["result"]?["configuration"]?["storeSealing"] == "AES-256-GCM, key from the client secret")
        renewed.closeInput()
        #expect(try await renewed.waitForExit() == 0)

        let stale = try AgentProcess(
            arguments: ["--store", store], environment: Self.environment("secret-one-abcdefghijklmnop"))
        #expect(try await stale.waitForExit() == 2)
    }

    @Test func aValueMovedToAnotherRowIsAnErrorAndNothingIsMarkedReauthRequired() async throws {
        let folder = try TemporaryFolder("sealed-agent")
        let store = folder.file("state/tokens.sqlite3")
        try await Self.makeStore(store, secret: "secret-one-abcdefghijklmnop", keys: ["car-1", "car-2"])
        _ = try Self.sqlite(
            store,
            """
            UPDATE tokens SET access_token = (SELECT access_token FROM tokens WHERE key = 'car-1'),
                refresh_token = (SELECT refresh_token FROM tokens WHERE key = 'car-1') WHERE key = 'car-2'
            """)
        let agent = try AgentProcess(
            arguments: ["--store", store], environment: Self.environment("secret-one-abcdefghijklmnop"))
        let moved = try await agent.call(id: 1, "getToken", ["key": "car-2"])
        #expect(moved["error"]?["data"]?["kind"] == "storageError")
        #expect(moved["error"]?["message"]?.stringValue?.contains("does not open") == true)
        let untouched = try await agent.call(id: 2, "getToken", ["key": "car-1"])
        #expect(untouched["result"]?["accessToken"] == Self.token("car-1")["accessToken"])
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
        #expect(try Self.sqlite(store, "SELECT group_concat(needs_reauth) FROM tokens") == "0,0\n")
        #expect(!agent.stderr.contains("access-car") && !agent.stderr.contains("refresh-car"))
    }
}
