import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing
import WireFormats

/// Issue 14, must-show 3: a host paused (SIGSTOP) while it holds a key's lease, past the lease's end. The other
/// host cannot see whether the paused agent is alive, so it takes the lease only once the lease expires by the
/// database's clock, and refreshes the key. Resumed, the paused agent's commit is fenced out by the row's
/// generation: the other host's tokens stay, its caller gets them, and nobody sends a spent refresh token.
@Suite(.enabled(if: SimulatedHost.isAvailable, "needs root and iproute2 (network namespaces)"))
struct PausedHostsTests {
    @Test(.timeLimit(.minutes(3))) func aHostPausedHoldingALeaseIsFencedOutWhenItResumes() async throws {
        var options = FakeSmartcar.Options()
        // Smartcar's reuse window: the paused agent's refresh reached Smartcar, so the other host re-sends the same
        // refresh token, as the only one it has (it never saw the paused agent's answer).
        options.refreshReuse = .grace(60)
        let fleet = try await HostFleet.start(fake: options)
        let (hostA, hostB) = (fleet.hosts[0], fleet.hosts[1])
        // The lease lasts --request-timeout + 5 s (13 s): a refresh's whole call fits in it.
        let arguments = ["--request-timeout", "8", "--lease-seconds", "1"]
        let (agentA, agentB) = (try fleet.agent(on: hostA, arguments), try fleet.agent(on: hostB, arguments))
        let minted = fleet.fake.mintTokens(userID: "owner-1")
        let stored = try await agentA.call(
            id: 1, "storeToken",
            [
                "key": "car", "accessToken": .string(minted.accessToken), "refreshToken": .string(minted.refreshToken),
                "expiresAt": "2030-01-01T00:00:00Z",
            ])
        try #require(stored["result"] != nil, "\(stored)")

        // A's refresh reaches Smartcar, which rotates the token and keeps the answer back: A holds the lease. A is
        // paused the moment the answer is held, well inside its call's budget.
        fleet.fake.inject(.hold, on: .token)
        agentA.send(id: 2, "getToken", ["key": "car", "forceRefresh": true])
        let (fake, pidA) = (fleet.fake, agentA.pid)
        let held = try await onOwnThread {
            let held = fake.waitForHeldAnswers(1, timeout: .seconds(60))
            if held { kill(pidA, SIGSTOP) }
            return held
        }
        defer { kill(agentA.pid, SIGCONT) }
        try #require(held, "\(agentA.stderrTail())")
        let leaseOwner = try await fleet.query("SELECT lease_owner FROM smartcar_auth.tokens WHERE key = 'car'")
        #expect(leaseOwner.hasPrefix("\(hostA.hostName)/"), "\(leaseOwner)")

        // B waits for A's lease to expire (A's process is not B's to check), takes it and refreshes.
        let servedByB = try await agentB.call(
            id: 3, "getToken", ["key": "car", "forceRefresh": true], timeout: .seconds(90))
        let tokenB = try #require(servedByB["result"]?["accessToken"]?.stringValue, "\(servedByB)")
        let rowAfterB = try await fleet.query(
            "SELECT generation || ' ' || refresh_token FROM smartcar_auth.tokens WHERE key = 'car'")
        let refreshTokenB = try #require(rowAfterB.split(separator: " ").last.map(String.init))
        #expect(fleet.fake.count(.token) == 2 && fleet.fake.graceReuses == 1)

        // A resumes. Its call's budget ran out meanwhile (the lease outlasts a whole call), so it may send the
        // refresh again inside the reuse window before its held answer is read; either way the rotated tokens of
        // a grant B already replaced are discarded.
        try await onOwnThread {
            var random = SeededGenerator(seed: 1)
            fleet.fake.releaseHeld(using: &random)
        }
        kill(agentA.pid, SIGCONT)
        let servedByA = try await agentA.response(id: .int(2), timeout: .seconds(60))
        #expect(servedByA["result"]?["accessToken"] == .string(tokenB), "\(servedByA)\n\(agentA.stderrTail())")
        #expect(
            try await fleet.query(
                "SELECT generation || ' ' || refresh_token FROM smartcar_auth.tokens WHERE key = 'car'") == rowAfterB)
        #expect(!fleet.fake.isSpent(refreshToken: refreshTokenB), "B's refresh token is the live one")
        #expect(agentA.stderr.contains("superseded"), "\(agentA.stderrTail())")
        #expect(fleet.fake.refusedRefreshes.isEmpty, "a spent refresh token was sent after its reuse window")
        let laterA = try await agentA.call(id: 4, "getToken", ["key": "car"])
        #expect(laterA["result"]?["accessToken"] == .string(tokenB), "\(laterA)")
    }
}
