import AgentSupport
import AuthAgent
import FakeSmartcar
import Foundation
import JSONRPC
import Sealing
import SmartcarOAuth
import Synchronization
import TokenStore
import WireFormats

/// The agent in this process on an in-memory transport, with a real store and the fake Smartcar: requests are
/// made from JSON text and read the way the connection reads them; replies and notifications are kept in
/// memory. No child process, no pipe: for tests of the agent's rules that need neither.
package final class InProcessAgent: Sendable {
    /// What the harness refuses: a request the connection would not read as one, an unexpected immediate error.
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package let agent: Agent
    private let notifications = Mutex<[(method: String, params: JSONValue)]>([])
    private let closed = Mutex(false)

    /// An agent on `store` (in memory unless given) whose Smartcar is `fake`, as the application `clientID`
    /// (nil: the fake's main one; else one of its `extraClients`); the store sealed with that application's client
    /// secret, as the agent binary seals it.
    package init(
        fake: FakeSmartcar, clientID: String? = nil, store location: StoreLocation = .memory,
        transport: (any HTTPTransport)? = nil, settings: AgentSettings = AgentSettings()
    ) throws {
        var environment = fake.agentEnvironment
        if let clientID {
            environment["SMARTCAR_CLIENT_ID"] = clientID
            environment["SMARTCAR_CLIENT_SECRET"] = fake.options.secret(ofClient: clientID)
        }
        let configuration = try SmartcarConfiguration.fromEnvironment(environment)
        let setup = Agent.Setup(
            configuration: configuration,
            store: try SQLiteTokenStore.open(
                location, application: configuration.clientID ?? "",
                origin: "in-process \(UUID().uuidString.prefix(8))",
                sealing: environment["SMARTCAR_CLIENT_SECRET"].map {
                    StoreSecrets(current: .clientSecret(SecretBytes(Array($0.utf8))))
                }),
            storeDescription: "\(location)",
            transport: transport ?? CurlTransport.shared,
            clock: SystemClock(), adjustableClock: nil, logger: .silent, settings: settings)
        agent = Agent(setup)
    }

    /// What a handler may do to this in-memory peer.
    package var context: PeerContext {
        PeerContext(
            notify: { [self] method, params in notifications.withLock { $0.append((method, params)) } },
            close: { [self] in closed.withLock { $0 = true } },
            cancelAll: { [self] in closed.withLock { $0 = true } },
            statistics: { .init(requestsServed: 0, inFlight: 0) })
    }

    /// True once the agent closed the session (`exit`, its parent gone).
    package var isClosed: Bool { closed.withLock { $0 } }

    /// The notifications sent so far.
    package var sentNotifications: [(method: String, params: JSONValue)] { notifications.withLock { $0 } }

    /// A request read the way the connection reads it.
    package func message(_ method: String, _ params: JSONValue? = nil) throws -> IncomingMessage {
        Requests.recordTokens(method, params)
        var text = #"{"jsonrpc":"2.0","id":1,"method":"\#(method)""#
        if let params { text += #","params":"# + params.compactText }
        guard let message = IncomingMessage(reading: Array((text + "}").utf8)) else {
            throw Failure(description: "not a request the connection would read: \(text)}")
        }
        return message
    }

    /// The result of the task path, as the client would read it; an error answer is thrown as `ResponseError`.
    package func call(_ method: String, _ params: JSONValue? = nil) async throws -> JSONValue {
        let request = try message(method, params)
        let outcome = Mutex<Reply.Outcome?>(nil)
        await agent.handle(request, context: context, reply: Reply { answer in outcome.withLock { $0 = $0 ?? answer } })
        switch outcome.withLock({ $0 }) {
        case .result(let value)?: return try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
        case .error(let error)?: throw error
        case nil: throw Failure(description: "\(method) returned without replying")
        }
    }

    /// The immediate answer's result (nil: left to the task path); an immediate error is thrown.
    package func immediate(_ method: String, _ params: JSONValue? = nil) throws -> JSONValue? {
        switch agent.immediateReply(to: try message(method, params)) {
        case nil: return nil
        case .result(let json)?: return try JSONDecoder().decode(JSONValue.self, from: Data(json))
        case .error(let error)?: throw error
        }
    }

    /// Imports a grant under `key` with `storeToken`.
    package func store(
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
