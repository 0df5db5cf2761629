import AgentSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Synchronization
import Testing
import WireFormats

@testable import AuthAgent
@testable import smartcar_auth_agent

/// The agent in this process, on an in-memory transport: requests are made from JSON text and read the way
/// the connection reads them, replies and notifications are collected in memory. No child process, no pipe.
final class InProcessAgent: Sendable {
    let agent: Agent
    private let notifications = Mutex<[(method: String, params: JSONValue)]>([])
    private let closed = Mutex(false)

    init(fake: FakeSmartcar, arguments: [String] = ["--store", "memory"]) throws {
        let options = try CommandLineOptions(parsing: arguments)
        agent = Agent(try AgentLauncher.setup(options: options, environment: fake.agentEnvironment, logger: .silent))
    }

    /// What a handler may do to this in-memory peer.
    var context: PeerContext {
        PeerContext(
            notify: { [self] method, params in notifications.withLock { $0.append((method, params)) } },
            close: { [self] in closed.withLock { $0 = true } },
            cancelAll: { [self] in closed.withLock { $0 = true } },
            statistics: { .init(requestsServed: 0, inFlight: 0) })
    }

    /// True once the agent closed the session (`exit`, its parent gone).
    var isClosed: Bool { closed.withLock { $0 } }

    /// The notifications sent so far.
    var sentNotifications: [(method: String, params: JSONValue)] { notifications.withLock { $0 } }

    /// A request read the way the connection reads it.
    func message(_ method: String, _ params: JSONValue? = nil) throws -> IncomingMessage {
        var text = #"{"jsonrpc":"2.0","id":1,"method":"\#(method)""#
        if let params {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            text += #","params":"# + String(decoding: try encoder.encode(params), as: UTF8.self)
        }
        return try #require(IncomingMessage(reading: Array((text + "}").utf8)))
    }

    /// The result of the task path, as the client would read it; an error answer is thrown as `ResponseError`.
    func call(_ method: String, _ params: JSONValue? = nil) async throws -> JSONValue {
        let request = try message(method, params)
        let outcome = Mutex<Reply.Outcome?>(nil)
        await agent.handle(
            request, context: context,
            reply: Reply { answer in
                outcome.withLock { $0 = $0 ?? answer }
            })
        switch outcome.withLock({ $0 }) {
        case .result(let value)?: return try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
        case .error(let error)?: throw error
        case nil: throw ResponseError.internalError("no reply")
        }
    }

    /// The immediate answer's result (nil: left to the task path), failing the test on an immediate error.
    func immediate(_ method: String, _ params: JSONValue? = nil) throws -> JSONValue? {
        switch agent.immediateReply(to: try message(method, params)) {
        case nil: return nil
        case .result(let json)?: return try JSONDecoder().decode(JSONValue.self, from: Data(json))
        case .error(let error)?:
            Issue.record("unexpected immediate error \(error)")
            return nil
        }
    }

    func store(
        _ key: String, accessToken: String = "at-1", refreshToken: String = "rt-1", expiresIn: TimeInterval = 7200,
        refreshExpiresAt: String? = "2031-01-01T00:00:00Z"
    ) async throws -> JSONValue {
        var params: [String: JSONValue] = [
            "key": .string(key), "accessToken": .string(accessToken), "refreshToken": .string(refreshToken),
            "expiresAt": .string(RFC3339.string(Date().addingTimeInterval(expiresIn))),
        ]
        if let refreshExpiresAt { params["refreshExpiresAt"] = .string(refreshExpiresAt) }
        return try await call("storeToken", .object(params))
    }
}
