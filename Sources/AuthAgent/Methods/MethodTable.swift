import JSONRPC

/// Every method of the protocol, request or notification, in one table: the only place the agent knows
/// them by name (each name is spelled in its declaration, in `Methods/`). The agent routes each message
/// through it.
enum MethodTable {
    /// In the order `initialize` lists them.
    static let requests: [any AgentMethod.Type] = [
        Initialize.self, Shutdown.self, Ping.self, Status.self,
        BuildConnectURL.self, HandleRedirect.self, ExchangeCode.self, Connect.self,
        GetToken.self, AppToken.self, StoreToken.self, ForgetToken.self, ListTokens.self,
        AdvanceClock.self,
    ]

    static let notifications: [any AgentNotification.Type] = [Initialized.self, Exit.self]

    /// Notifications the agent sends to clients that opted in at `initialize`.
    enum Outgoing: String, CaseIterable {
        case tokenChanged, reauthRequired
    }

    /// The requests an agent built from `setup` answers, by name.
    static func requests(offeredIn setup: Agent.Setup) -> [String: any AgentMethod.Type] {
        Dictionary(uniqueKeysWithValues: requests.filter { $0.isOffered(in: setup) }.map { ($0.name, $0) })
    }

    static func notification(named name: String) -> (any AgentNotification.Type)? {
        notifications.first { $0.name == name }
    }
}

/// A notification from the client, declared once with its name.
protocol AgentNotification: Sendable {
    static var name: String { get }
    /// Runs on the reading thread, in arrival order: quick, never blocking.
    static func handle(_ notification: IncomingMessage, agent: Agent, context: PeerContext)
}
