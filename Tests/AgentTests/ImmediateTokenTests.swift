import AgentSupport
@testable import AuthAgent
import FakeSmartcar
import Foundation
@testable import JSONRPC
@testable import smartcar_auth_agent
import Testing

/// The agent in this process, its requests made from JSON text, without a connection running.
struct InProcessAgent {
    let agent: Agent
    /// Only handed to `handleRequest`; it never runs.
    let connection: Connection

    init(fake: FakeSmartcar) throws {
        let options = try CommandLineOptions(parsing: ["--store", "memory"])
        agent = Agent(try AgentLauncher.setup(options: options, environment: fake.agentEnvironment, logger: .silent))
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        connection = Connection(inputFD: fds[0], outputFD: fds[1], logger: .silent)
    }

    /// A request read the way the connection reads it.
    func message(_ method: String, _ params: JSONValue? = nil) throws -> IncomingMessage {
        var text = #"{"jsonrpc":"2.0","id":1,"method":"\#(method)""#
        if let params {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            text += #","params":"# + String(decoding: try encoder.encode(params), as: UTF8.self)
        }
        let bytes = Array((text + "}").utf8)
        let request = try #require(bytes.withUnsafeBufferPointer { RequestScanner.scan($0) })
        return IncomingMessage(id: request.id, method: request.method, raw: bytes, hasParams: request.params != nil, paramsRange: request.params)
    }

    /// The result of the slow path, as the client would read it.
    func call(_ method: String, _ params: JSONValue? = nil) async throws -> JSONValue {
        let result = try await agent.handleRequest(try message(method, params), connection: connection)
        return try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(result))
    }

    /// The immediate answer's result (nil: left to the slow path), failing the test on an immediate error.
    func immediate(_ method: String, _ params: JSONValue? = nil) throws -> JSONValue? {
        switch agent.immediateReply(to: try message(method, params)) {
        case nil: return nil
        case .result(let json)?: return try JSONDecoder().decode(JSONValue.self, from: Data(json))
        case .error(let error)?:
            Issue.record("unexpected immediate error \(error)")
            return nil
        }
    }

    func store(_ key: String, accessToken: String = "at-1", refreshToken: String = "rt-1", expiresIn: TimeInterval = 7200,
               refreshExpiresAt: String? = "2031-01-01T00:00:00Z") async throws -> JSONValue {
        var params: [String: JSONValue] = [
            "key": .string(key), "accessToken": .string(accessToken), "refreshToken": .string(refreshToken),
            "expiresAt": .string(RFC3339.string(Date().addingTimeInterval(expiresIn))),
        ]
        if let refreshExpiresAt { params["refreshExpiresAt"] = .string(refreshExpiresAt) }
        return try await call("storeToken", .object(params))
    }
}

/// Expects two token summaries to be the same but for `expiresIn`, which may differ by the seconds between them
/// (a minute is allowed: this machine can be very busy).
func expectSameSummary(_ a: JSONValue?, _ b: JSONValue?, sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .object(var first)? = a, case .object(var second)? = b else {
        Issue.record("not two summaries: \(String(describing: a)) and \(String(describing: b))", sourceLocation: sourceLocation)
        return
    }
    let firstIn = first.removeValue(forKey: "expiresIn")?.intValue, secondIn = second.removeValue(forKey: "expiresIn")?.intValue
    #expect(first == second, sourceLocation: sourceLocation)
    #expect(firstIn != nil && secondIn != nil && abs(firstIn! - secondIn!) <= 60, "\(String(describing: firstIn)) vs \(String(describing: secondIn))",
            sourceLocation: sourceLocation)
}

/// `getToken` answered on the reading thread from the snapshot, and everything that must send it the slow way.
@Suite struct ImmediateTokenTests {
    @Test func aCachedTokenIsAnsweredAtOnceWithTheSameSummaryAsTheSlowPath() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try InProcessAgent(fake: fake)
        for (key, refreshExpiresAt) in [("car/7 x", "2031-01-01T00:00:00Z"), ("plain", nil)] {
            let stored = try await agent.store(key, accessToken: #"at "1" \ / é"#, refreshExpiresAt: refreshExpiresAt)
            let immediate = try agent.immediate("getToken", ["key": .string(key)])
            expectSameSummary(immediate, stored)
            expectSameSummary(immediate, try await agent.call("getToken", ["key": .string(key)]))
            #expect(immediate?["refreshExpiresAt"] == refreshExpiresAt.map { .string($0) })
            #expect(immediate?["expiresIn"]?.intValue.map { (7100...7200).contains($0) } == true)
            expectSameSummary(try agent.immediate("getToken", ["key": .string(key), "minValidity": 900, "forceRefresh": false]), stored)
        }
    }

    @Test func whatTheSnapshotCannotVouchForGoesTheSlowWay() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try InProcessAgent(fake: fake)
        _ = try await agent.store("car", expiresIn: 1000)
        _ = try await agent.store("véhicule")
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 900]) != nil)
        // Within minValidity plus the most jitter the actor could add, the actor decides.
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 975]) == nil)
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 900, "forceRefresh": true]) == nil)
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 4000]) == nil)
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": .null]) == nil)
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 900, "extra": ["nested": true]]) == nil)
        #expect(try agent.immediate("getToken", ["key": "unknown"]) == nil)
        #expect(try agent.immediate("getToken", ["key": "véhicule"]) == nil)
        #expect(try agent.immediate("getToken", ["key": .string(String(repeating: "k", count: 513))]) == nil)
        #expect(try agent.immediate("getToken") == nil)
        #expect(try agent.immediate("status") == nil)
        #expect(try agent.immediate("ping") == [:])
        _ = try await agent.call("forgetToken", ["key": "car"])
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 0]) == nil)
    }

    @Test func afterShutdownEveryRequestIsRefusedAtOnce() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try InProcessAgent(fake: fake)
        _ = try await agent.store("car")
        #expect(try agent.immediate("getToken", ["key": "car"]) != nil)
        #expect(try agent.immediate("shutdown") == .null)
        for method in ["getToken", "ping", "shutdown", "status"] {
            guard case .error(let error)? = agent.agent.immediateReply(to: try agent.message(method, ["key": "car"])) else {
                Issue.record("\(method) after shutdown was not refused at once")
                continue
            }
            #expect(error.code == -32600)
        }
    }

    @Test func aRunningRefreshTakesTheKeyOffTheFastPathUntilItsRowIsReadAgain() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try InProcessAgent(fake: fake)
        let minted = fake.mintTokens(userID: "car")
        _ = try await agent.store("car", accessToken: minted.accessToken, refreshToken: minted.refreshToken)
        #expect(try agent.immediate("getToken", ["key": "car"])?["accessToken"] == .string(minted.accessToken))
        fake.inject(.delay(.milliseconds(500)), on: .token)
        let refresh = Task { try await agent.call("getToken", ["key": "car", "forceRefresh": true]) }
        let deadline = ContinuousClock.now + .seconds(20)
        while fake.count(.token) == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(fake.count(.token) == 1)
        // Callers must join the refresh now, not be handed the token it replaces.
        #expect(try agent.immediate("getToken", ["key": "car"]) == nil)
        let refreshed = try await refresh.value["accessToken"]
        #expect(refreshed != nil && refreshed != .string(minted.accessToken))
        #expect(try agent.immediate("getToken", ["key": "car"]) == nil)
        #expect(try await agent.call("getToken", ["key": "car"])["accessToken"] == refreshed)
        #expect(try agent.immediate("getToken", ["key": "car"])?["accessToken"] == refreshed)
        #expect(fake.count(.token) == 1)
    }

    @Test func aKeyWhoseRefreshWasRejectedIsNeverAnsweredAtOnce() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try InProcessAgent(fake: fake)
        let minted = fake.mintTokens(userID: "car")
        _ = try await agent.store("car", accessToken: minted.accessToken, refreshToken: minted.refreshToken)
        fake.revokeTokens(userID: "car")
        await #expect(throws: ResponseError.self) { try await agent.call("getToken", ["key": "car", "forceRefresh": true]) }
        #expect(try agent.immediate("getToken", ["key": "car"]) == nil)
        do {
            _ = try await agent.call("getToken", ["key": "car"])
            Issue.record("a key needing a new Connect was served")
        } catch let error as ResponseError {
            #expect(error.data?["kind"] == "reauthRequired")
        }
        #expect(try agent.immediate("getToken", ["key": "car"]) == nil)
    }
}
