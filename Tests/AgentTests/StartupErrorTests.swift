import AgentTestSupport
import Foundation
import Testing

/// A start-up failure is one line on stderr and exit code 2, whatever the flags (a libpq error has a hint on a
/// second line; `--sandbox` and `--log-level` add nothing before it).
@Suite struct StartupErrorTests {
    static let failures: [[String]] = [
        ["--bogus"],
        ["--store", "postgresql://nobody@127.0.0.1:1/nothing"],
        ["--sandbox", "--store", "postgresql://nobody@127.0.0.1:1/nothing"],
        ["--log-level", "trace", "--sandbox", "--store", "postgresql://nobody@127.0.0.1:1/nothing"],
        ["--client-secret-file", "/nonexistent/secret"],
        ["--sandbox", "--store", "/tmp/tokens.sqlite3"],
        ["--mode", "nonsense", "--store", "memory"],
    ]

    @Test(arguments: failures)
    func aStartupErrorIsOneLine(arguments: [String]) async throws {
        let agent = try AgentProcess(arguments: arguments)
        #expect(try await agent.waitForExit() == 2)
        let lines = agent.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(agent.stderr)")
        #expect(agent.stderr.hasSuffix("\n"))
    }
}
