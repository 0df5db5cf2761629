import JSONRPC

/// One request method of the protocol, declared once: its name, its params (with the one validation both the
/// immediate path and the task path use), its result, and the error kinds it may answer besides the ones
/// every method may (`ErrorKind.common`).
protocol AgentMethod: Sendable {
    associatedtype Params: MethodParams
    associatedtype Result: Encodable & Sendable

    static var name: String { get }
    static var errors: Set<ErrorKind> { get }

    /// Runs the method in a task of its own.
    static func run(_ params: Params, agent: Agent, context: PeerContext) async throws -> Result

    /// The answer given on the reading thread when it takes no waiting, or nil to have `run` answer.
    static func immediateReply(to request: IncomingMessage, agent: Agent) -> ImmediateReply?

    /// Whether this agent offers the method (`$/advanceClock` only with `--allow-clock-control`).
    static func isOffered(in setup: Agent.Setup) -> Bool
}

extension AgentMethod {
    static func immediateReply(to request: IncomingMessage, agent: Agent) -> ImmediateReply? { nil }
    static func isOffered(in setup: Agent.Setup) -> Bool { true }

    /// Reads the params, runs the method and sends its one response.
    static func answer(_ request: IncomingMessage, agent: Agent, context: PeerContext, reply: Reply) async {
        do {
            reply(try await run(try Params.read(request), agent: agent, context: context))
        } catch {
            reply(error: await agent.withConnectURL(agent.responseError(for: error, from: Self.self)))
        }
    }
}

/// A method's params. Decoded from the request (or, on the immediate path, read from flat params without a
/// `JSONDecoder`), then checked by `validate()`, the one place for rules beyond JSON types.
protocol MethodParams: Decodable, Sendable {
    /// The params read from flat ones; nil when a member is missing or of another type, so the decoder reads
    /// them and names the problem.
    init?(flat: FlatParams)
    /// Rules beyond JSON types (lengths, ranges, non-empty strings); throws `AgentError.invalidParams`.
    func validate() throws(AgentError)
}

extension MethodParams {
    init?(flat: FlatParams) { nil }
    func validate() throws(AgentError) {}

    /// Decodes and validates the params of `request` (absent params read as `{}`).
    static func read(_ request: IncomingMessage) throws -> Self {
        let params = try request.params(Self.self)
        try params.validate()
        return params
    }
}

/// The params of a method that takes none: whatever is sent is ignored.
struct NoParams: MethodParams {
    init() {}
    init(from decoder: any Decoder) {}
    init?(flat: FlatParams) {}
}
