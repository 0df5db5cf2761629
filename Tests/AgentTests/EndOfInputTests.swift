import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing
import WireFormats

/// End of input (Ctrl-D) while a refresh is at Smartcar: the agent says at once on stderr what it is finishing,
/// naming methods and ids only, then answers and exits 0.
@Suite struct EndOfInputTests {
    @Test func endOfInputWithARequestInFlightIsSaidAtOnce() async throws {
        let fake = try FakeSmartcar()
        let tokens = fake.mintTokens()
        // The refresh's budget is far beyond the test's, so only the fake's release can answer it.
        let agent = try AgentProcess(
            arguments: ["--store", "memory", "--request-timeout", "600"], environment: fake.agentEnvironment)
        let stored = try await agent.call(
            id: 1, "storeToken",
            [
                "key": "car", "accessToken": .string(tokens.accessToken), "refreshToken": .string(tokens.refreshToken),
                "expiresAt": "2030-01-01T00:00:00Z",
            ])
        #expect(stored["result"] != nil)
        fake.inject(.hold, on: .token)
        agent.send(id: 2, "getToken", ["key": "car", "forceRefresh": true])
        #expect(fake.waitForHeldAnswers(1, timeout: .seconds(60)), "the refresh never reached the fake")

        agent.closeInput()
        // The answer is held by the fake: the line can only come from the end of input, before the answer.
        let deadline = ContinuousClock.now + .seconds(60)
        while !agent.stderr.contains("end of input") && ContinuousClock.now < deadline && agent.isRunning {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(
            agent.stderr.contains("end of input: finishing 1 request in flight before exiting (getToken (id 2))"),
            "\(agent.stderrTail())")
        #expect(agent.inbox.count(.int(2)) == 0)

        var generator = SeededGenerator(seed: 1)
        _ = fake.releaseHeld(using: &generator)
        let refreshed = try await agent.response(id: .int(2))
        #expect(refreshed["result"]?["accessToken"]?.stringValue?.hasPrefix("fake-at-") == true, "\(refreshed)")
        #expect(try await agent.waitForExit() == 0)
        for secret in [tokens.accessToken, tokens.refreshToken, fake.options.clientSecret] {
            #expect(!agent.stderr.contains(secret))
        }
    }
}
