import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing
import WireFormats

/// Issue 14: agents on two simulated hosts (own network, own host name) share one set of tokens in PostgreSQL,
/// reached over the hosts' links, with the guarantees they have on one host.
@Suite(.enabled(if: SimulatedHost.isAvailable, "needs root and iproute2 (network namespaces)"), .serialized)
struct ManyHostsTests {
    @Test(.timeLimit(.minutes(3))) func whatOneHostChangesTheOtherServesAndHearsOfWithItsOrigin() async throws {
        let fleet = try await HostFleet.start()
        let (hostA, hostB) = (fleet.hosts[0], fleet.hosts[1])
        let (agentA, agentB) = (try fleet.agent(on: hostA), try fleet.agent(on: hostB))
        for agent in [agentA, agentB] {
            _ = try await agent.call(id: 1, "initialize", ["notifications": true])
            // Once a getToken returned, the agent follows the store's changes.
            _ = try await agent.call(id: 2, "getToken", ["key": "none yet"], timeout: .seconds(60))
        }
        let minted = fleet.fake.mintTokens(userID: "owner-1")
        let stored = try await agentA.call(
            id: 3, "storeToken",
            [
                "key": "car", "accessToken": .string(minted.accessToken), "refreshToken": .string(minted.refreshToken),
                "expiresAt": "2030-01-01T00:00:00Z",
            ])
        #expect(stored["result"] != nil, "\(stored)")
        let heardByB = try await Self.notification(from: agentB, reason: "stored")
        let originA = try #require(heardByB["params"]?["origin"]?.stringValue)
        #expect(originA.hasPrefix("\(hostA.hostName)/"), "\(originA)")
        let servedByB = try await agentB.call(id: 4, "getToken", ["key": "car"])
        #expect(servedByB["result"]?["accessToken"] == .string(minted.accessToken), "\(servedByB)")

        _ = try await agentB.call(id: 5, "forgetToken", ["key": "car"])
        let heardByA = try await Self.notification(from: agentA, reason: "forgotten")
        let originB = try #require(heardByA["params"]?["origin"]?.stringValue)
        #expect(originB.hasPrefix("\(hostB.hostName)/"), "\(originB)")
        #expect(try await agentA.call(id: 6, "getToken", ["key": "car"]).errorKind == "unknownKey")
        #expect(fleet.fake.count(.token) == 0)
    }

    /// Four agents, two per host, ask for every expired key at once, in a seeded random order: each key is
    /// refreshed exactly once between them, and every agent answers the one new token of that key's grant.
    @Test(.timeLimit(.minutes(3)), arguments: [1, 2] as [UInt64])
    func aRefreshStormFromBothHostsRefreshesEachKeyOnce(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        var options = FakeSmartcar.Options()
        options.latency = .milliseconds(50)  // refreshes overlap, as across a network
        let fleet = try await HostFleet.start(fake: options)
        let agents = try fleet.hosts.flatMap { host in try (0..<2).map { _ in try fleet.agent(on: host) } }
        let keys = (0..<6).map { "car-\($0)" }
        for (index, key) in keys.enumerated() {
            let minted = fleet.fake.mintTokens(userID: key)
            let stored = try await agents[index % agents.count].call(
                id: 1000 + index, "storeToken",
                [
                    "key": .string(key), "accessToken": .string(minted.accessToken),
                    "refreshToken": .string(minted.refreshToken), "expiresAt": "2020-01-01T00:00:00Z",
                ])
            try #require(stored["result"] != nil, "\(stored)")
        }
        var requests = agents.indices.flatMap { agent in keys.indices.map { (agent, $0) } }
        requests.shuffle(using: &random)
        for (agent, key) in requests { agents[agent].send(id: 2000 + key, "getToken", ["key": .string(keys[key])]) }

        var answered: [String: Set<String>] = [:]
        for (agent, key) in requests {
            let reply = try await agents[agent].response(id: .int(Int64(2000 + key)), timeout: .seconds(120))
            let token = try #require(reply["result"]?["accessToken"]?.stringValue, "\(reply)")
            #expect(fleet.fake.owner(ofAccessToken: token) == keys[key], "a token of another grant for \(keys[key])")
            answered[keys[key], default: []].insert(token)
        }
        #expect(answered.values.allSatisfy { $0.count == 1 }, "agents answered different tokens: \(answered)")
        #expect(fleet.fake.count(.token) == keys.count, "each key refreshed exactly once")
        #expect(fleet.fake.refusedRefreshes.isEmpty)
    }

    /// The database stopped, then started again: every answer meanwhile is the key's token or a clear
    /// `storageError` naming PostgreSQL (never the URI's password, never another token), nothing reaches Smartcar,
    /// and once the database is back the agents reconnect by themselves, refresh once, and agree.
    @Test(.timeLimit(.minutes(3))) func whileTheDatabaseIsDownAgentsFailClearlyAndRecoverByThemselves() async throws {
        let fleet = try await HostFleet.start()
        let password = "password-that-must-not-leak"
        let agents = try fleet.hosts.map { host in
            let uri = fleet.storeURI(from: host).replacingOccurrences(of: "postgres@", with: "postgres:\(password)@")
            return try host.start(arguments: ["--store", uri], environment: fleet.fake.agentEnvironment)
        }
        let minted = fleet.fake.mintTokens(userID: "owner-1")
        let stored = try await agents[0].call(
            id: 1, "storeToken",
            [
                "key": "car", "accessToken": .string(minted.accessToken), "refreshToken": .string(minted.refreshToken),
                "expiresAt": "2030-01-01T00:00:00Z",
            ])
        try #require(stored["result"] != nil, "\(stored)")
        for agent in agents { _ = try await agent.call(id: 2, "getToken", ["key": "car"]) }

        try await onOwnThread { try fleet.cluster.stop() }
        for agent in agents {
            let cached = try await agent.call(id: 3, "getToken", ["key": "car"])
            if cached["result"] != nil {
                #expect(cached["result"]?["accessToken"] == .string(minted.accessToken), "\(cached)")
            } else {
                #expect(cached.errorKind == "storageError", "\(cached)")
            }
            let refresh = try await agent.call(id: 4, "getToken", ["key": "car", "forceRefresh": true])
            #expect(refresh.errorKind == "storageError", "\(refresh)")
            let message = refresh["error"]?["message"]?.stringValue ?? ""
            #expect(message.contains("PostgreSQL") && !message.contains(password), "\(message)")
        }
        #expect(fleet.fake.count(.token) == 0)

        try await onOwnThread { try fleet.cluster.start() }
        var refreshed: JSONValue = .null
        let deadline = ContinuousClock.now + .seconds(60)
        for id in 5... where ContinuousClock.now < deadline {
            refreshed = try await agents[1].call(id: id, "getToken", ["key": "car", "forceRefresh": true])
            if refreshed["result"] != nil { break }
            try await Task.sleep(for: .milliseconds(100))  // the agent reconnects with a backoff of up to 2 s
        }
        let token = try #require(refreshed["result"]?["accessToken"]?.stringValue, "\(refreshed)")
        #expect(fleet.fake.count(.token) == 1)
        // The other host's agent reconnects by itself too (it may still be in its backoff).
        var servedByOther: JSONValue = .null
        for id in 100... where ContinuousClock.now < deadline {
            servedByOther = try await agents[0].call(id: id, "getToken", ["key": "car"])
            if servedByOther["result"] != nil { break }
            #expect(servedByOther.errorKind == "storageError", "\(servedByOther)")
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(servedByOther["result"]?["accessToken"] == .string(token), "\(servedByOther)")
        for agent in agents { #expect(!agent.stderr.contains(password)) }
    }

    /// The first `tokenChanged` notification with `reason` that `agent` sent (waiting up to a minute for it).
    static func notification(from agent: AgentProcess, reason: String) async throws -> JSONValue {
        let matches: @Sendable (JSONValue) -> Bool = {
            $0["method"] == "tokenChanged" && $0["params"]?["reason"] == .string(reason)
        }
        try await agent.waitFor("a tokenChanged notification (\(reason))", timeout: .seconds(60)) {
            $0.notifications.contains(where: matches)
        }
        return agent.inbox.notifications.first(where: matches)!
    }
}
