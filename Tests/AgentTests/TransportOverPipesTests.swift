import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing

/// The transport's promises, checked against the real binary over pipes.
@Suite struct TransportOverPipesTests {
    @Test func tenThousandPipelinedRequestsAreEachAnsweredOnce() async throws {
        let agent = try AgentProcess(arguments: ["--store", "memory"])
        let count = 10_000
        var text = ""
        for id in 1...count { text += Requests.request(id: id, "ping") + "\n" }
        agent.send(Array(text.utf8))
        try await agent.waitForResponses(count: count)
        for id in 1...count {
            let replies = agent.responses(id: id)
            #expect(replies.count == 1, "id \(id) answered \(replies.count) times")
            #expect(replies.first?["result"] == .object([:]))
        }
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
        #expect(agent.inbox.violations.isEmpty)
    }

    @Test func aBatchOfAHundredIsAnsweredAsOneArray() async throws {
        let agent = try AgentProcess(arguments: ["--store", "memory"])
        let batch = (1...100).map { Requests.request(id: $0, "ping") }.joined(separator: ",")
        agent.sendLine("[\(batch)]")
        let reply = try await agent.waitForBatch()
        #expect(reply.count == 100)
        #expect(Set(reply.compactMap { $0["id"]?.intValue }) == Set(1...100))
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func contentLengthFramingIsAnsweredInKind() async throws {
        let agent = try AgentProcess(arguments: ["--store", "memory"], keepRawOutput: true)
        let body = Requests.request(id: 7, "ping")
        let header =
            "Content-Length: \(body.utf8.count)\r\n"
            + "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"
        agent.send(Array((header + body).utf8))
        _ = try await agent.response(id: .int(7))
        let raw = String(decoding: agent.rawOutput, as: UTF8.self)
        #expect(raw.hasPrefix("Content-Length: "))
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func aCancelledBlockedRequestIsAnsweredWhileOthersFlow() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        fake.inject(.stall, on: .appToken)
        // A budget far beyond the test's: however slowly a loaded machine runs it, only the cancel answers id 1.
        let agent = try AgentProcess(
            arguments: ["--store", "memory", "--request-timeout", "600"], environment: fake.agentEnvironment)
        agent.send(id: 1, "appToken")
        // The stalled request does not hold up a thousand others.
        for id in 2...1001 { agent.send(id: id, "ping") }
        try await agent.waitForResponses(count: 1000)
        #expect(agent.responses(id: .int(1)).isEmpty)
        agent.sendLine(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#)
        let cancelled = try await agent.response(id: .int(1))
        #expect(cancelled.errorCode == -32800)
        #expect(try await agent.call(id: 2000, "ping")["result"] == .object([:]))
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
        #expect(agent.responses(id: .int(1)).count == 1)
    }

    @Test func exitAfterShutdownIsZeroAndRequestsAfterShutdownAreRefused() async throws {
        let agent = try AgentProcess(arguments: ["--store", "memory"])
        #expect(try await agent.call(id: 1, "shutdown")["result"] == .null)
        #expect(try await agent.call(id: 2, "ping").errorCode == -32600)
        agent.sendLine(#"{"jsonrpc":"2.0","method":"exit"}"#)
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func exitWithoutShutdownIsOne() async throws {
        let agent = try AgentProcess(arguments: ["--store", "memory"])
        _ = try await agent.call(id: 1, "ping")
        agent.sendLine(#"{"jsonrpc":"2.0","method":"exit"}"#)
        #expect(try await agent.waitForExit() == 1)
    }

    @Test func endOfInputStillAnswersRequestsInFlight() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        fake.inject(.delay(.milliseconds(300)), on: .appToken)
        let agent = try AgentProcess(arguments: ["--store", "memory"], environment: fake.agentEnvironment)
        agent.send(id: 1, "appToken")
        agent.closeInput()
        let reply = try await agent.response(id: .int(1))
        #expect(reply["result"]?["accessToken"]?.stringValue != nil)
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func sigtermFinishesInFlightRequestsAndExitsZero() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        fake.inject(.delay(.milliseconds(300)), on: .appToken)
        let agent = try AgentProcess(arguments: ["--store", "memory"], environment: fake.agentEnvironment)
        agent.send(id: 1, "appToken")
        try await waitUntil { fake.count(.appToken) == 1 }
        kill(agent.pid, SIGTERM)
        #expect(try await agent.response(id: .int(1))["result"] != nil)
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func theAgentExitsWhenTheProcessNamedInInitializeDies() async throws {
        let parent = Process()
        parent.executableURL = URL(fileURLWithPath: "/bin/sleep")
        parent.arguments = ["300"]
        try parent.run()
        let agent = try AgentProcess(arguments: ["--store", "memory"])
        _ = try await agent.call(id: 1, "initialize", ["processId": .int(Int64(parent.processIdentifier))])
        #expect(agent.isRunning)
        kill(parent.processIdentifier, SIGKILL)
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func stdoutCarriesOnlyProtocolMessages() async throws {
        let agent = try AgentProcess(arguments: ["--store", "memory", "--log-level", "trace"])
        _ = try await agent.call(id: 1, "initialize", ["clientInfo": ["name": "test"]])
        _ = try await agent.call(id: 2, "status")
        agent.sendLine("{this is not json}")
        _ = try await agent.response(id: .null)
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
        #expect(agent.inbox.violations.isEmpty)
        #expect(!agent.stderr.isEmpty)
    }

    @Test func versionAndHelp() throws {
        for flag in ["--version", "--help"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: BinaryLocator.agent)
            process.arguments = [flag]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            process.waitUntilExit()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationStatus == 0)
            #expect(text.contains("smartcar-auth-agent"))
        }
    }
}

/// Polls a condition the test cannot be notified of (a count in another thread or process), with a deadline.
func waitUntil(timeout: Duration = .seconds(30), _ condition: @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw AgentProcess.Failure("timed out waiting for a condition") }
        try await Task.sleep(for: .milliseconds(2))
    }
}
