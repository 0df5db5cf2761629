import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import TokenStore
import WireFormats

/// Issue 13: a key only another application on the store has is answered with an error that says so, not a
/// plain `unknownKey`; the other application's tokens are never used.
@Suite struct OtherApplicationKeyTests {
    @Test func aKeyOfAnotherApplicationIsNamedAsSuch() async throws {
        let folder = try TemporaryFolder("other-application-key")
        let location = StoreLocation.file(folder.file("tokens.sqlite3"))
        var fakes: [FakeSmartcar] = []
        defer { fakes.forEach { $0.stop() } }
        var agents: [InProcessAgent] = []
        for application in ["live-app", "test-app"] {
            var options = FakeSmartcar.Options()
            options.clientID = application
            let fake = try FakeSmartcar(options: options)
            fakes.append(fake)
            agents.append(try InProcessAgent(fake: fake, store: location))
        }
        let minted = fakes[0].mintTokens(userID: "car")
        _ = try await agents[0].store("car", accessToken: minted.accessToken, refreshToken: minted.refreshToken)
        for (key, otherApplication) in [("car", true), ("nobody's", false)] {
            do {
                _ = try await agents[1].call("getToken", ["key": .string(key)])
                Issue.record("\(key) was served to an application that has no tokens for it")
            } catch let error as ResponseError {
                #expect(error.data?["kind"] == "unknownKey")
                #expect(error.data?["otherApplication"] == (otherApplication ? true : nil))
                #expect(error.message.contains("another application") == otherApplication, "\(error.message)")
                #expect(error.data?["connectURL"]?.stringValue != nil)
            }
        }
        #expect(try await agents[0].call("getToken", ["key": "car"])["accessToken"] == .string(minted.accessToken))
    }
}
