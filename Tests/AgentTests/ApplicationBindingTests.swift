import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import TokenStore
import WireFormats

/// Issue 13: two applications (client ids) of one Smartcar keep keys of the same names in one store file; each
/// agent lists, serves and refreshes only its own application's keys, so it never sends the other's grant
/// upstream. One fake serves both clients and refuses (and records) any grant sent by the wrong one.
@Suite struct ApplicationBindingTests {
    static let applications = ["live-app", "test-app"]

    @Test func twoApplicationsOnOneStoreFileNeverUseEachOthersGrants() async throws {
        let folder = try TemporaryFolder("two-applications")
        let location = StoreLocation.file(folder.file("state/tokens.sqlite3"))
        var options = FakeSmartcar.Options()
        options.clientID = Self.applications[0]
        options.extraClients = [Self.applications[1]: "test-app-secret"]
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        let agents = try Self.applications.map { try InProcessAgent(fake: fake, clientID: $0, store: location) }
        let shared = ["car", "van"]
        // Interleaved, so each name is written by one application right after the other's.
        for key in shared + ["own"] {
            for (application, agent) in zip(Self.applications, agents) {
                let name = key == "own" ? "\(application)-only" : key
                let minted = fake.mintTokens(userID: "\(application)/\(name)", clientID: application)
                _ = try await agent.store(name, accessToken: minted.accessToken, refreshToken: minted.refreshToken)
            }
        }
        for _ in 0..<3 {
            for (application, agent) in zip(Self.applications, agents) {
                let listed = try await agent.call("listTokens")["tokens"]?.arrayValue ?? []
                #expect(
                    listed.compactMap { $0["key"]?.stringValue }.sorted()
                        == (shared + ["\(application)-only"]).sorted(),
                    "\(application)")
                for key in shared + ["\(application)-only"] {
                    // Refreshed upstream with its own grant: the fake accepts only the client it was issued to.
                    let refreshed = try await agent.call("getToken", ["key": .string(key), "forceRefresh": true])
                    let token = try #require(refreshed["accessToken"]?.stringValue, "\(application) \(key)")
                    #expect(fake.owner(ofAccessToken: token) == "\(application)/\(key)")
                }
                let other = Self.applications.first { $0 != application }!
                do {
                    _ = try await agent.call("getToken", ["key": .string("\(other)-only")])
                    Issue.record("\(application) was served \(other)'s key")
                } catch let error as ResponseError {
                    #expect(error.data?["kind"] == "unknownKey")
                }
            }
        }
        #expect(fake.crossClientGrants.isEmpty, "\(fake.crossClientGrants)")
        #expect(fake.refusedRefreshes.isEmpty)
        #expect(fake.count(.token) == 3 * 2 * 3)
    }
}
