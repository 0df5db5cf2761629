import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing
import WireFormats

/// Issue 13 under a paused process: an agent stopped (SIGSTOP, a suspended laptop, a paused VM) while another
/// agent forgets a key resumes with a request already waiting. Its reading thread runs before its change watch,
/// so the snapshot would answer the forgotten key's token; a watch that lags more than the limit sends the
/// request to the actor, which reads the store.
@Suite struct PausedAgentTests {
    @Test func aResumedAgentDoesNotServeWhatAnotherForgotWhileItWasPaused() throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let folder = try TemporaryFolder("paused-agent")
        let arguments = ["--store", folder.file("tokens.sqlite3")]
        let changer = try AgentProcess(arguments: arguments, environment: fake.agentEnvironment)
        defer { changer.kill() }
        let paused = try AgentProcess(arguments: arguments, environment: fake.agentEnvironment)
        defer {
            paused.kill(SIGCONT)
            paused.kill()
        }
        let minted = fake.mintTokens(userID: "car")
        let stored = changer.call(
            1, "storeToken",
            [
                "key": "car", "accessToken": .string(minted.accessToken), "refreshToken": .string(minted.refreshToken),
                "expiresAt": .string(ISO8601DateFormatter().string(from: Date().addingTimeInterval(7200))),
            ])
        #expect(stored?["result"] != nil, "\(String(describing: stored))")
        // Read twice: the second answer comes from the paused agent's memory.
        for id in 1...2 {
            #expect(
                paused.call(.int(Int64(id)), "getToken", ["key": "car"])?["result"]?["accessToken"]
                    == .string(minted.accessToken))
        }
        paused.kill(SIGSTOP)
        #expect(changer.call(2, "forgetToken", ["key": "car"])?["result"]?["existed"] == true)
        #expect(paused.send(id: 3, "getToken", ["key": "car"]))
        // The pause itself is the fault under test: it must outlast the watch's lag limit (1 s).
        Thread.sleep(forTimeInterval: 1.5)
        paused.kill(SIGCONT)
        let answer = paused.response(3)
        #expect(answer?["error"]?["data"]?["kind"] == "unknownKey", "\(String(describing: answer))")
    }
}
