import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import TokenStore

extension AgentProcess {
    /// Stores a key whose access token has already expired, with a live refresh token minted by `fake`.
    func storeExpiredKey(_ key: String, fake: FakeSmartcar, id: Int) async throws {
        let minted = fake.mintTokens(userID: key)
        let reply = try await call(
            id: id, "storeToken",
            [
                "key": .string(key), "accessToken": .string(minted.accessToken),
                "refreshToken": .string(minted.refreshToken),
                "expiresAt": "2020-01-01T00:00:00Z",
            ])
        #expect(reply["result"] != nil, "\(reply)")
    }
}

/// getToken: single-flight in one process and across processes, refresh rejection, and the store's rules.
@Suite struct TokenLifecycleTests {
    @Test func aThousandConcurrentGetTokensRefreshOnce() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try AgentProcess(arguments: ["--store", "memory"], environment: fake.agentEnvironment)
        try await agent.storeExpiredKey("car", fake: fake, id: 1)
        let batch = (1...1000).map { Requests.request(id: 1000 + $0, "getToken", ["key": "car"]) }
            .joined(separator: "\n")
        agent.send(Array((batch + "\n").utf8))
        try await agent.waitForResponses(count: 1001)
        let tokens = (1...1000).map { agent.responses(id: 1000 + $0).first?["result"]?["accessToken"]?.stringValue }
        #expect(tokens.allSatisfy { $0 != nil })
        #expect(Set(tokens).count == 1)
        #expect(fake.count(.token) == 1)
    }

    @Test func fourProcessesOnOneStoreRefreshEachKeyOnce() async throws {
        let fake = try FakeSmartcar()  // rejects any reuse of a refresh token
        defer { fake.stop() }
        let folder = try TemporaryFolder()
        let store = folder.file("tokens.sqlite3")
        let agents = try (0..<4).map { _ in
            try AgentProcess(arguments: ["--store", store], environment: fake.agentEnvironment)
        }
        try await agents[0].storeExpiredKey("shared", fake: fake, id: 1)
        for agent in agents {
            let lines = (1...250).map { Requests.request(id: 10_000 + $0, "getToken", ["key": "shared"]) }
                .joined(separator: "\n")
            agent.send(Array((lines + "\n").utf8))
        }
        for agent in agents { try await agent.waitForResponses(count: 250) }
        var tokens: Set<String> = []
        for agent in agents {
            for id in 1...250 {
                let reply = agent.responses(id: 10_000 + id).first
                #expect(reply?["error"] == nil, "\(String(describing: reply))")
                if let token = reply?["result"]?["accessToken"]?.stringValue { tokens.insert(token) }
            }
        }
        #expect(fake.count(.token) == 1)
        #expect(tokens.count == 1)
    }

    @Test func fourProcessesAndAHundredKeysRefreshEachKeyOnce() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let folder = try TemporaryFolder()
        let store = folder.file("tokens.sqlite3")
        let agents = try (0..<4).map { _ in
            try AgentProcess(arguments: ["--store", store], environment: fake.agentEnvironment)
        }
        for key in 0..<100 { try await agents[0].storeExpiredKey("key-\(key)", fake: fake, id: key + 1) }
        for agent in agents {
            let lines = (0..<100).flatMap { key in
                (0..<3).map { Requests.request(id: 10_000 + key * 10 + $0, "getToken", ["key": .string("key-\(key)")]) }
            }
            agent.send(Array((lines.joined(separator: "\n") + "\n").utf8))
        }
        for agent in agents { try await agent.waitForResponses(count: agents[0] === agent ? 400 : 300) }
        for agent in agents {
            for reply in agent.inbox.messages where reply["id"]?.intValue ?? 0 >= 10_000 {
                #expect(reply["error"] == nil, "\(reply)")
            }
        }
        #expect(fake.count(.token) == 100)
    }

    /// Refreshes of different keys overlap up to `--max-upstream-concurrency`, not up to URLSession's
    /// default of 6 connections per host (which libcurl honours).
    @Test(arguments: [4, 24]) func refreshesOfManyKeysOverlapUpToTheBound(bound: Int) async throws {
        var options = FakeSmartcar.Options()
        options.latency = .milliseconds(400)
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        let agent = try AgentProcess(
            arguments: ["--store", "memory", "--max-upstream-concurrency", String(bound)],
            environment: fake.agentEnvironment)
        let keys = 24
        for key in 0..<keys { try await agent.storeExpiredKey("car-\(key)", fake: fake, id: key + 1) }
        let lines = (0..<keys).map { Requests.request(id: 100 + $0, "getToken", ["key": .string("car-\($0)")]) }
        agent.send(Array((lines.joined(separator: "\n") + "\n").utf8))
        try await agent.waitForResponses(count: 2 * keys)
        for key in 0..<keys { #expect(agent.responses(id: 100 + key).first?["result"] != nil) }
        #expect(fake.count(.token) == keys)
        #expect(fake.peakConcurrentRequests <= bound)
        // Answers take 400 ms each, so refreshes started together overlap: far more than 6 of 24 at once.
        if bound > 6 { #expect(fake.peakConcurrentRequests > 6) } else { #expect(fake.peakConcurrentRequests == bound) }
    }

    @Test func aRejectedRefreshMeansReauthRequiredWithAConnectURL() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try AgentProcess(arguments: ["--store", "memory"], environment: fake.agentEnvironment)
        _ = try await agent.call(id: 1, "initialize", ["notifications": true])
        _ = try await agent.call(
            id: 2, "storeToken",
            [
                "key": "dead", "accessToken": "a", "refreshToken": "never-issued", "expiresAt": "2020-01-01T00:00:00Z",
            ])
        let first = try await agent.call(id: 3, "getToken", ["key": "dead"])
        #expect(first.errorKind == "reauthRequired")
        let connectURL = try #require(first["error"]?["data"]?["connectURL"]?.stringValue)
        #expect(connectURL.contains("/oauth/authorize?"))
        _ = try await agent.waitForNotification("reauthRequired")
        // Later calls answer the same without asking Smartcar again.
        #expect(try await agent.call(id: 4, "getToken", ["key": "dead"]).errorKind == "reauthRequired")
        #expect(fake.count(.token) == 1)
        // Connecting again through that URL stores fresh tokens under the same key.
        let redirect = try FakeBrowser.redirect(for: connectURL)
        #expect(try await agent.call(id: 5, "handleRedirect", ["url": .string(redirect)])["result"]?["key"] == "dead")
        #expect(try await agent.call(id: 6, "getToken", ["key": "dead"])["result"] != nil)
    }

    @Test func unknownKeyCarriesAConnectURL() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try AgentProcess(arguments: ["--store", "memory"], environment: fake.agentEnvironment)
        let reply = try await agent.call(id: 1, "getToken", ["key": "nobody"])
        #expect(reply.errorKind == "unknownKey")
        #expect(reply["error"]?["code"]?.intValue == -32010)
        #expect(reply["error"]?["data"]?["connectURL"]?.stringValue != nil)
    }

    @Test func storeListForget() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try AgentProcess(arguments: ["--store", "memory"], environment: fake.agentEnvironment)
        _ = try await agent.call(id: 1, "initialize", ["notifications": true])
        try await agent.storeExpiredKey("k1", fake: fake, id: 2)
        let listed = try await agent.call(id: 3, "listTokens")
        guard case .array(let list) = try #require(listed["result"]?["tokens"]) else {
            Issue.record("tokens is not a list"); return
        }
        #expect(list.count == 1)
        #expect(list[0]["key"] == "k1")
        #expect(list[0]["state"] == "expired")
        #expect(list[0]["accessToken"] == nil && list[0]["refreshToken"] == nil)
        #expect(try await agent.call(id: 4, "forgetToken", ["key": "k1"])["result"]?["existed"] == true)
        #expect(try await agent.call(id: 5, "forgetToken", ["key": "k1"])["result"]?["existed"] == false)
        #expect(try await agent.call(id: 6, "getToken", ["key": "k1"]).errorKind == "unknownKey")
        let changed = try await agent.waitForNotification("tokenChanged")
        #expect(changed["params"]?["key"] == "k1")
    }

    @Test func badParamsNameTheField() async throws {
        let agent = try AgentProcess(arguments: ["--store", "memory"])
        let missing = try await agent.call(id: 1, "getToken", [:])
        #expect(missing.errorCode == -32602)
        #expect(missing["error"]?["message"]?.stringValue?.contains("key") == true)
        let wrongType = try await agent.call(id: 2, "getToken", ["key": "k", "minValidity": "soon"])
        #expect(wrongType.errorCode == -32602)
        #expect(wrongType["error"]?["message"]?.stringValue?.contains("minValidity") == true)
        let badTime = try await agent.call(
            id: 3, "storeToken", ["key": "k", "accessToken": "a", "refreshToken": "r", "expiresAt": "tomorrow"])
        #expect(badTime["error"]?["message"]?.stringValue?.contains("expiresAt") == true)
    }
}

/// Refresh tokens nearing their 60-day end are refreshed in the background, so an idle key does not die.
@Suite struct BackgroundRefreshTests {
    @Test func anIdleKeyNearItsRefreshEndIsRefreshedWithoutBeingAsked() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let folder = try TemporaryFolder()
        let store = folder.file("state/tokens.sqlite3")
        let minted = fake.mintTokens(userID: "idle")
        // The seeding agent refreshes nothing in the background (its start-up look could come after the import).
        let seeding = try AgentProcess(
            arguments: ["--store", store, "--refresh-window-days", "0"], environment: fake.agentEnvironment)
        let inThreeDays = RFC3339Text.string(Date().addingTimeInterval(3 * 86_400))
        _ = try await seeding.call(
            id: 1, "storeToken",
            [
                "key": "idle", "accessToken": .string(minted.accessToken), "refreshToken": .string(minted.refreshToken),
                "expiresAt": "2030-01-01T00:00:00Z", "refreshExpiresAt": .string(inThreeDays),
            ])
        seeding.closeInput()
        _ = try await seeding.waitForExit()
        #expect(fake.count(.token) == 0)

        // A new agent finds the key within the 7-day window at start-up and refreshes it.
        let agent = try AgentProcess(arguments: ["--store", store], environment: fake.agentEnvironment)
        var refreshEnd: Date?
        var id = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            id += 1
            let listed = try await agent.call(id: id, "listTokens")
            guard case .array(let rows) = listed["result"]?["tokens"] else { Issue.record("no tokens"); return }
            refreshEnd = rows.first?["refreshExpiresAt"]?.stringValue.flatMap(RFC3339Text.date)
            if let end = refreshEnd, end.timeIntervalSinceNow > 50 * 86_400 { break }
            try await Task.sleep(for: .milliseconds(10))  // polling the store's state, with a deadline
        }
        #expect(refreshEnd.map { $0.timeIntervalSinceNow > 50 * 86_400 } == true)
        #expect(fake.count(.token) == 1)
        #expect(!fake.isLive(refreshToken: minted.refreshToken))
    }
}

enum RFC3339Text {
    static func string(_ date: Date) -> String { date.formatted(.iso8601) }
    static func date(_ text: String) -> Date? { try? Date.ISO8601FormatStyle().parse(text) }
}
