import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing
import WireFormats

/// Issue 14: the simulated hosts the multi-host tests put agents on are real enough: each has its own host name
/// and network, and reaches the fake Smartcar only where a test exposed it.
@Suite(.enabled(if: SimulatedHost.isAvailable, "needs root and iproute2 (network namespaces)"))
struct SimulatedHostsTests {
    @Test func eachHostHasItsOwnHostNameAndLink() throws {
        let hosts = try ["host-a", "host-b"].map { try SimulatedHost(hostName: $0) }
        for host in hosts {
            #expect(try Self.output(of: host.commandLine(["/bin/hostname"])) == host.hostName)
        }
        #expect(Set(hosts.map(\.hostSideAddress)).count == 2)
        #expect(Set(hosts.map(\.insideAddress)).count == 2)
        #expect(try Self.output(of: ["/bin/hostname"]) != "host-a")
    }

    @Test func anAgentOnAHostReachesTheFakeSmartcarOnlyWhereItIsExposed() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let (exposed, isolated) = try await onOwnThread {
            let hosts = (try SimulatedHost(hostName: "exposed"), try SimulatedHost(hostName: "isolated"))
            try hosts.0.expose(fake)
            return hosts
        }
        for (index, host) in [exposed, isolated].enumerated() {
            let agent = try host.start(
                arguments: ["--store", "memory", "--request-timeout", "5"], environment: fake.agentEnvironment)
            let minted = fake.mintTokens(userID: host.hostName)
            let stored = try await agent.call(
                id: 1, "storeToken",
                [
                    "key": "car", "accessToken": .string(minted.accessToken),
                    "refreshToken": .string(minted.refreshToken), "expiresAt": "2030-01-01T00:00:00Z",
                ])
            #expect(stored["result"] != nil)
            let refreshed = try await agent.call(id: 2, "getToken", ["key": "car", "forceRefresh": true])
            if host === exposed {
                #expect(refreshed["result"]?["accessToken"] != nil, "\(refreshed)\n\(agent.stderrTail())")
            } else {
                #expect(refreshed.errorKind == "upstreamUnavailable", "\(refreshed)")
            }
            #expect(fake.count(.token) == 1, "after host \(index)")
        }
    }

    /// What `argv` writes to stdout, trimmed; throws if it fails.
    static func output(of argv: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(argv) failed")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
