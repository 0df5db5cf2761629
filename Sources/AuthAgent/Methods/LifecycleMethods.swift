import AgentSupport
import Foundation
import JSONRPC
import WireFormats

// The session: `initialize`, `shutdown` then `exit`, `ping`, `status`, and the test clock.

enum Initialize: AgentMethod {
    static let name = "initialize"
    static let errors: Set<ErrorKind> = []

    struct Params: MethodParams {
        struct ClientInfo: Decodable, Sendable {
            var name: String
            var version: String?
        }
        /// The client's process: when it is gone, the agent exits.
        var processId: Int32?
        var clientInfo: ClientInfo?
        /// Opt-in to agent → client notifications (`MethodTable.Outgoing`).
        var notifications: Bool?

        private enum Keys: String, CodingKey { case processId, clientInfo, notifications }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Keys.self)
            clientInfo = try container.decodeIfPresent(ClientInfo.self, forKey: .clientInfo)
            notifications = try container.decodeIfPresent(Bool.self, forKey: .notifications)
            // Read wide, so that a number out of a pid's range is refused by `validate` with a clear message
            // (0 stands for any such number).
            processId = try container.decodeIfPresent(Double.self, forKey: .processId).map { pid in
                pid.rounded() == pid && pid > 1 && pid <= Double(Int32.max) ? Int32(pid) : 0
            }
        }

        func validate() throws(AgentError) {
            if let processId, processId <= 1 {
                // 0 and negative numbers name process groups to kill(2), and 1 is init, which never goes.
                throw .invalidParams("invalid params: 'processId' must be a whole number from 2 to 2147483647")
            }
            try Limits.check(clientInfo?.name, field: "clientInfo.name", max: Limits.clientInfo)
            try Limits.check(clientInfo?.version, field: "clientInfo.version", max: Limits.clientInfo)
        }
    }

    static func run(_ params: Params, agent: Agent, context: PeerContext) throws -> JSONValue {
        guard agent.beginSession() else { throw AgentError.invalidRequest("initialize was already called") }
        let logger = agent.setup.logger
        if params.notifications == true { agent.notifier.enable(context.notify) }
        if let client = params.clientInfo { logger.info("client: \(client.name) \(client.version ?? "")") }
        if let pid = params.processId { ParentWatch.exitWhenGone(pid: pid, logger: logger, onGone: context.close) }
        let notifications = params.notifications == true ? MethodTable.Outgoing.allCases.map(\.rawValue) : []
        return [
            "serverInfo": ["name": "smartcar-auth-agent", "version": .string(AgentVersion.current)],
            "protocolVersion": .string(AgentVersion.protocolVersion),
            "capabilities": [
                "methods": .array(MethodTable.requests.filter { $0.isListed }.map { .string($0.name) }),
                "notifications": .array(notifications.map { .string($0) }),
            ],
            "configuration": agent.configurationSummary(),
        ]
    }
}

enum Shutdown: AgentMethod {
    static let name = "shutdown"
    static let errors: Set<ErrorKind> = []

    static func run(_ params: NoParams, agent: Agent, context: PeerContext) -> JSONValue {
        agent.beginShutdown()
        return .null
    }

    static func immediateReply(to request: IncomingMessage, agent: Agent) -> ImmediateReply? {
        agent.beginShutdown()
        return .result(json: Array("null".utf8))
    }
}

enum Ping: AgentMethod {
    static let name = "ping"
    static let errors: Set<ErrorKind> = []

    static func run(_ params: NoParams, agent: Agent, context: PeerContext) -> JSONValue { [:] }

    static func immediateReply(to request: IncomingMessage, agent: Agent) -> ImmediateReply? {
        .result(json: Array("{}".utf8))
    }
}

enum Status: AgentMethod {
    static let name = "status"
    static let errors: Set<ErrorKind> = []

    static func run(_ params: NoParams, agent: Agent, context: PeerContext) async -> JSONValue {
        let keys = try? await agent.setup.store.count()
        let statistics = context.statistics()
        return [
            "version": .string(AgentVersion.current),
            "uptimeSeconds": .double((Date().timeIntervalSince(agent.startedAt) * 1000).rounded() / 1000),
            "requestsServed": .int(Int64(statistics.requestsServed)),
            "inFlight": .int(Int64(statistics.inFlight)),
            "storedKeys": keys.map { .int(Int64($0)) } ?? .null,
            "peakUpstreamConcurrency": .int(Int64(await agent.upstream.peak)),
            "configuration": agent.configurationSummary(),
        ]
    }
}

/// Moves the agent's clock (transcripts and tests only: offered with `--allow-clock-control`).
enum AdvanceClock: AgentMethod {
    static let name = "$/advanceClock"
    static let errors: Set<ErrorKind> = []

    struct Params: MethodParams {
        var seconds: Double
    }

    static func isOffered(in setup: Agent.Setup) -> Bool { setup.adjustableClock != nil }

    static func run(_ params: Params, agent: Agent, context: PeerContext) throws -> JSONValue {
        guard let clock = agent.setup.adjustableClock else { throw ResponseError.methodNotFound(name) }
        clock.advance(by: params.seconds)
        return ["now": .string(RFC3339.string(clock.now()))]
    }
}

extension AgentMethod {
    /// Listed in `initialize`'s capabilities: every method but the `$/` ones of tests.
    static var isListed: Bool { !name.hasPrefix("$/") }
}

enum Initialized: AgentNotification {
    static let name = "initialized"
    static func handle(_ notification: IncomingMessage, agent: Agent, context: PeerContext) {}
}

/// Ends the session: requests in flight are answered as cancelled, and the process exits 0 after `shutdown`,
/// 1 without.
enum Exit: AgentNotification {
    static let name = "exit"

    static func handle(_ notification: IncomingMessage, agent: Agent, context: PeerContext) {
        let code = agent.endSession()
        agent.setup.logger.info("exit notification received; exiting with code \(code)")
        context.cancelAll()
    }
}

extension Agent {
    /// The configuration as `initialize` and `status` report it (never the secret itself).
    func configurationSummary() -> JSONValue {
        let configuration = setup.configuration
        return [
            "clientID": configuration.clientID.map { .string($0) } ?? .null,
            "clientSecretSet": .bool(configuration.clientSecret != nil),
            "redirectURI": configuration.redirectURI.map { .string($0) } ?? .null,
            "mode": .string(configuration.mode.rawValue),
            "store": .string(setup.storeDescription),
            "storeSealing": .string(setup.storeSealing),
        ]
    }
}
