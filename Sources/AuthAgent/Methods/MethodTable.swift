import JSONRPC

/// Every method of the protocol, request or notification, in one table: the only place the agent knows
/// them by name (each name is spelled in its declaration, in `Methods/`). The agent's `MessageHandler`
/// conformance below routes each message through it.
enum MethodTable {
    /// In the order `initialize` lists them.
    static let requests: [any AgentMethod.Type] = [
        Initialize.self, Shutdown.self, Ping.self, Status.self,
        BuildConnectURL.self, HandleRedirect.self, ExchangeCode.self,
        GetToken.self, AppToken.self, StoreToken.self, ForgetToken.self, ListTokens.self,
        AdvanceClock.self,
    ]

    static let notifications: [any AgentNotification.Type] = [Initialized.self, Exit.self]

    /// Notifications the agent sends to clients that opted in at `initialize`.
    enum Outgoing: String, CaseIterable {
        case tokenChanged, reauthRequired
    }

    private static let requestsByName = Dictionary(uniqueKeysWithValues: requests.map { ($0.name, $0) })

    static func request(named name: String, offeredBy agent: Agent) -> (any AgentMethod.Type)? {
        guard let method = requestsByName[name], method.isOffered(by: agent) else { return nil }
        return method
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

extension Agent: MessageHandler {
    package func immediateReply(to request: IncomingMessage) -> ImmediateReply? {
        if isShuttingDown { return .error(responseError(for: Self.shuttingDown, from: Shutdown.self)) }
        guard let method = MethodTable.request(named: request.method, offeredBy: self) else {
            return .error(.methodNotFound(request.method))
        }
        return method.immediateReply(to: request, agent: self)
    }

    package func handle(_ request: IncomingMessage, context: PeerContext, reply: Reply) async {
        guard let method = MethodTable.request(named: request.method, offeredBy: self) else {
            return reply(error: .methodNotFound(request.method))
        }
        // `shutdown` may have arrived between this request and its task.
        if isShuttingDown { return reply(error: responseError(for: Self.shuttingDown, from: method)) }
        await method.answer(request, agent: self, context: context, reply: reply)
    }

    package func handle(notification: IncomingMessage, context: PeerContext) {
        MethodTable.notification(named: notification.method)?.handle(notification, agent: self, context: context)
            ?? setup.logger.debug("ignoring notification '\(notification.method)'")
    }

    private static let shuttingDown = AgentError.invalidRequest(
        "the agent is shutting down; only the 'exit' notification is accepted")
}
