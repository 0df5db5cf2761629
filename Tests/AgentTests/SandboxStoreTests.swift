import AgentTestSupport
import Foundation
import Testing
import WireFormats

/// `--sandbox` with a durable store, one agent process per call as the shell client runs it: the store is chosen
/// by `--store` or `SMARTCAR_AUTH_STORE` alike, and each run's fake accepts the grants earlier runs' fakes issued.
@Suite struct SandboxStoreTests {
    enum Choice: String, CaseIterable { case flag, variable }

    /// One agent run of `requests`, as `smartcar-auth` does it: send them all, end the input, read the answers.
    func run(_ choice: Choice, store: String, _ method: String, _ params: JSONValue) async throws -> JSONValue {
        let agent = try AgentProcess(
            arguments: ["--sandbox"] + (choice == .flag ? ["--store", store] : []),
            environment: choice == .variable ? ["SMARTCAR_AUTH_STORE": store] : [:])
        agent.send(id: 1, method, params)
        agent.closeInput()
        let answer = try await agent.response(id: .int(1))
        #expect(try await agent.waitForExit() == 0, "\(agent.stderrTail())")
        return answer
    }

    @Test(arguments: Choice.allCases)
    func aDurableSandboxStoreKeepsWorkingAcrossRuns(choice: Choice) async throws {
        let folder = try TemporaryFolder("sandbox-store")
        let store = folder.file("state/tokens.sqlite3")
        let stored = try await run(
            choice, store: store, "storeToken",
            [
                "key": "my-car", "accessToken": "imported-access", "refreshToken": "imported-refresh",
                "expiresAt": "2020-01-01T00:00:00Z",
            ])
        #expect(stored["result"] != nil, "\(stored)")
        #expect(FileManager.default.fileExists(atPath: store), "the \(choice) must choose the store")

        // Each run starts a new fake: it refreshes the grant the store holds, then the one the last run rotated.
        var previous = "imported-access"
        for _ in 0..<3 {
            let token = try await run(choice, store: store, "getToken", ["key": "my-car", "forceRefresh": true])
            let access = try #require(token["result"]?["accessToken"]?.stringValue, "\(token)")
            #expect(access != previous)
            previous = access
        }
        let cached = try await run(choice, store: store, "getToken", ["key": "my-car"])
        #expect(cached["result"]?["accessToken"]?.stringValue == previous, "\(cached)")
    }

    @Test func withoutAStoreTheSandboxKeepsNothing() async throws {
        let folder = try TemporaryFolder("sandbox-memory")
        let agent = try AgentProcess(arguments: ["--sandbox"], environment: ["XDG_STATE_HOME": folder.path])
        agent.send(id: 1, "status")
        agent.closeInput()
        _ = try await agent.response(id: .int(1))
        #expect(try await agent.waitForExit() == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }
}
