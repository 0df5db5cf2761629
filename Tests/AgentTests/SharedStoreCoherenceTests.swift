import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import TokenStore
import WireFormats

/// Issue 13: agents sharing a store file agree. After one agent forgets, stores, exchanges or refreshes a key,
/// every other agent that was serving the key from memory stops and serves the store's new state instead.
@Suite struct SharedStoreCoherenceTests {
    /// What an agent answers for a key: its access token, or the error kind.
    enum Served: Equatable, CustomStringConvertible {
        case token(String)
        case error(String)

        var description: String {
            switch self {
            case .token(let token): "token \(token)"
            case .error(let kind): "error \(kind)"
            }
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func everyAgentServesWhatAnotherChanged(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let folder = try TemporaryFolder("shared-store-coherence")
        let location = StoreLocation.file(folder.file("tokens.sqlite3"))
        let agents = try (0..<3).map { _ in try InProcessAgent(fake: fake, store: location) }
        let keys = ["car-a", "car-b"]
        for key in keys {
            let minted = fake.mintTokens(userID: key)
            _ = try await agents[0].store(key, accessToken: minted.accessToken, refreshToken: minted.refreshToken)
        }
        for _ in 0..<24 {
            let key = keys.randomElement(using: &random)!
            // Every agent serves the key first, so each holds it in memory when another changes it.
            for agent in agents { _ = try await Self.serve(agent, key) }
            let changer = agents.randomElement(using: &random)!
            let expected: Served
            switch Int.random(in: 0..<4, using: &random) {
            case 0:
                _ = try await changer.call("forgetToken", ["key": .string(key)])
                expected = .error("unknownKey")
            case 1:
                let minted = fake.mintTokens(userID: key)
                _ = try await changer.store(key, accessToken: minted.accessToken, refreshToken: minted.refreshToken)
                expected = .token(minted.accessToken)
            case 2:
                let code = fake.issueCode(userID: key)
                let result = try await changer.call("exchangeCode", ["code": .string(code), "key": .string(key)])
                expected = .token(try #require(result["accessToken"]?.stringValue))
            default:
                // A forgotten key has nothing to refresh.
                guard case .token = try await Self.serve(changer, key) else { continue }
                let result = try await changer.call("getToken", ["key": .string(key), "forceRefresh": true])
                expected = .token(try #require(result["accessToken"]?.stringValue))
            }
            for agent in agents {
                try await Self.waitUntil(agent, serves: expected, for: key)
            }
        }
    }

    /// Waits (at most 30 s, far above the bound) until `agent` answers `expected` for `key`.
    static func waitUntil(_ agent: InProcessAgent, serves expected: Served, for key: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var last = try await serve(agent, key)
        while last != expected, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
            last = try await serve(agent, key)
        }
        try #require(last == expected, "an agent still serves \(last) for \(key) after another changed it")
    }

    /// What a client of `agent` gets for `key`: from memory when the agent answers on the spot, else the task.
    static func serve(_ agent: InProcessAgent, _ key: String) async throws -> Served {
        let params: JSONValue = ["key": .string(key)]
        do {
            var result = try agent.immediate("getToken", params)
            if result == nil { result = try await agent.call("getToken", params) }
            return .token(result?["accessToken"]?.stringValue ?? "")
        } catch let error as ResponseError {
            return .error(error.data?["kind"]?.stringValue ?? "\(error.code)")
        }
    }
}
