import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Signals sent to the real binary while a refresh is at Smartcar (Protocol/README.md, "Signals").
@Suite struct SignalTests {
    /// An agent with key `car` stored, whose next refresh the fake holds (`fault`); the refresh of request
    /// id 2 is at the fake when this returns.
    func refreshInFlight(
        fault: Fault, arguments: [String] = []
    ) async throws -> (fake: FakeSmartcar, agent: AgentProcess) {
        let fake = try FakeSmartcar()
        let tokens = fake.mintTokens()
        let agent = try AgentProcess(
            // A lease of 120 s lets the refresh wait the whole 60 s timeout (a refresh is kept inside 3/4 of
            // its lease): on a busy machine the stalled refresh must still be in flight when the signals come.
            arguments: ["--store", "memory", "--request-timeout", "60", "--lease-seconds", "120"] + arguments,
            environment: fake.agentEnvironment)
        let stored = try await agent.call(
            id: 1, "storeToken",
            [
                "key": "car", "accessToken": .string(tokens.accessToken), "refreshToken": .string(tokens.refreshToken),
                "expiresAt": "2030-01-01T00:00:00Z",
            ])
        #expect(stored["result"] != nil)
        fake.inject(fault, on: .token)
        agent.send(id: 2, "getToken", ["key": "car", "forceRefresh": true])
        // Waits for the refresh to reach the fake (a condition, not a duration).
        let deadline = ContinuousClock.now + .seconds(30)
        while fake.count(.token) == 0 && ContinuousClock.now < deadline && agent.isRunning {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(fake.count(.token) == 1, "the refresh never reached the fake")
        return (fake, agent)
    }

    /// SIGUSR1, SIGUSR2, SIGALRM and SIGPIPE are ignored: the refresh is answered and the agent stays up.
    @Test(arguments: [SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE])
    func aStraySignalNeverKillsARefresh(signal: Int32) async throws {
        let (fake, agent) = try await refreshInFlight(fault: .delay(.seconds(1)))
        kill(agent.pid, signal)
        kill(agent.pid, signal)
        let refreshed = try await agent.response(id: .int(2))
        #expect(refreshed["result"]?["accessToken"]?.stringValue?.hasPrefix("fake-at-") == true, "\(refreshed)")
        #expect(try await agent.call(id: 3, "ping")["result"] != nil)
        #expect(agent.isRunning)
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
        _ = fake
    }

    /// SIGHUP (a closed terminal) is SIGTERM: stop reading, answer the refresh in flight, exit 0.
    @Test(arguments: [SIGHUP, SIGTERM, SIGINT])
    func aStopSignalFinishesTheRefreshThenExits(signal: Int32) async throws {
        let (fake, agent) = try await refreshInFlight(fault: .delay(.seconds(1)))
        kill(agent.pid, signal)
        let refreshed = try await agent.response(id: .int(2))
        #expect(refreshed["result"]?["accessToken"]?.stringValue?.hasPrefix("fake-at-") == true, "\(refreshed)")
        #expect(try await agent.waitForExit() == 0)
        #expect(agent.termination?.signalled == false)
        _ = fake
    }

    /// A second SIGINT, SIGTERM or SIGHUP forces the exit (code 128 + the signal) and names what it abandons.
    @Test(arguments: [(SIGINT, SIGINT), (SIGTERM, SIGTERM), (SIGTERM, SIGINT), (SIGHUP, SIGTERM)])
    func aSecondStopSignalForcesTheExit(first: Int32, second: Int32) async throws {
        let (fake, agent) = try await refreshInFlight(fault: .stall)
        kill(agent.pid, first)
        // Two pending signals of one number are one to the kernel: the second is sent once the first is taken.
        let deadline = ContinuousClock.now + .seconds(30)
        while !agent.stderr.contains("finishing in-flight requests") && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        kill(agent.pid, second)
        let code = try await agent.waitForExit()
        #expect(code == 128 + second || code == 128 + first, "exit code \(code)")
        #expect(agent.termination?.signalled == false)
        #expect(agent.stderr.contains("getToken (id 2)"), "\(agent.stderr)")
        #expect(!agent.stderr.contains(fake.options.clientSecret))
        fake.stop()
    }
}
