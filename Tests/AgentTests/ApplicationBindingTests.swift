import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import TokenStore
import WireFormats

/// Issue 13: two applications (client ids) keep keys of the same names in one store file; each agent lists,
/// serves and refreshes only its own application's keys, so it never sends the other's refresh token upstream.
@Suite struct ApplicationBindingTests {
    @Test func twoApplicationsOnOneStoreFileNeverUseEachOthersGrants() async throws {
        let folder = try TemporaryFolder("two-applications")
        let location = StoreLocation.file(folder.file("state/tokens.sqlite3"))
        var fakes: [FakeSmartcar] = []
        defer { fakes.forEach { $0.stop() } }
        var agents: [(agent: InProcessAgent, fake: FakeSmartcar, keys: [String])] = []
        for (application, ownKey) in [("live-app", "live-only"), ("test-app", "test-only")] {
            var options = FakeSmartcar.Options()
            options.clientID = application
            let fake = try FakeSmartcar(options: options)
            fakes.append(fake)
            agents.append((try InProcessAgent(fake: fake, store: location), fake, ["car", ownKey]))
        }
        // Interleaved, so the second application's "car" is written after the first's.
        for key in ["car", "own"] {
            for (agent, fake, keys) in agents {
                let name = key == "car" ? "car" : keys[1]
                let minted = fake.mintTokens(userID: name)
                _ = try await agent.store(name, accessToken: minted.accessToken, refreshToken: minted.refreshToken)
            }
        }
        for (agent, _, keys) in agents {
            let listed = try await agent.call("listTokens")["tokens"]?.arrayValue ?? []
            #expect(listed.compactMap { $0["key"]?.stringValue }.sorted() == keys.sorted())
            // Refreshed with its own application's grant: the fake of that application accepts it.
            let refreshed = try await agent.call("getToken", ["key": "car", "forceRefresh": true])
            #expect(refreshed["accessToken"]?.stringValue != nil, "\(refreshed)")
            let other = keys[1] == "live-only" ? "test-only" : "live-only"
            do {
                _ = try await agent.call("getToken", ["key": .string(other)])
                Issue.record("another application's key was served")
            } catch let error as ResponseError {
                #expect(error.data?["kind"] == "unknownKey")
            }
        }
    }
}
