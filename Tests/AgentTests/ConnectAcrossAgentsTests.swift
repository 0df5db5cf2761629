import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import TokenStore
import WireFormats

/// Issue 13: a Connect state is kept in the store, so the redirect of a Connect URL one agent built is taken by
/// any agent on the store, once across all of them.
@Suite struct ConnectAcrossAgentsTests {
    @Test func aStateFromOneAgentIsAcceptedOnceByAnother() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let folder = try TemporaryFolder("connect-across-agents")
        let location = StoreLocation.file(folder.file("tokens.sqlite3"))
        let agents = try (0..<3).map { _ in try InProcessAgent(fake: fake, store: location) }
        let built = try await agents[0].call("buildConnectURL", ["key": "car", "scope": ["read_odometer"]])
        let redirect = try FakeBrowser.redirect(for: try #require(built["url"]?.stringValue))
        let taken = try await agents[1].call("handleRedirect", ["url": .string(redirect)])
        #expect(taken["key"] == "car")
        // Every agent, the one that took it included, now knows the key and refuses the state again.
        for agent in agents {
            #expect(try await agent.call("getToken", ["key": "car"])["accessToken"] == taken["accessToken"])
            do {
                _ = try await agent.call("handleRedirect", ["url": .string(redirect)])
                Issue.record("a used state was accepted again")
            } catch let error as ResponseError {
                #expect(error.data?["kind"] == "stateMismatch")
                #expect(error.message.contains("already used"), "\(error.message)")
            }
        }
    }
}
