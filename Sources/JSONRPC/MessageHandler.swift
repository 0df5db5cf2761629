/// What a server built on `Connection` implements: the methods. The connection owns framing, ids,
/// batches, cancellation and the one-response-per-request rule.
public protocol MessageHandler: Sendable {
    /// Answers one request with its result, encoded straight onto the wire (a `JSONValue` or any Codable
    /// struct). Throw `ResponseError` for an error the client should see as is; any other error becomes
    /// -32603 with a generic message (never the error's text, which might hold a secret).
    func handleRequest(_ request: IncomingMessage, connection: Connection) async throws -> any Encodable & Sendable

    /// Handles one notification from the client, in arrival order: the next message is read once it
    /// returns (`$/cancelRequest` never reaches it).
    func handleNotification(_ notification: IncomingMessage, connection: Connection) async

    /// Answers a request at once when that takes no waiting (a value in memory), or returns nil to have it
    /// run by `handleRequest` in a task of its own. Called for every request, in arrival order, on the
    /// thread that reads input, before the next message is read: it must be quick and never block. This is
    /// the hot path: no task, no actor hop, no `JSONDecoder`.
    func immediateReply(to request: IncomingMessage) -> ImmediateReply?
}

extension MessageHandler {
    public func immediateReply(to request: IncomingMessage) -> ImmediateReply? { nil }
}

/// A request's answer given on the spot by `MessageHandler.immediateReply(to:)`.
public enum ImmediateReply: Sendable {
    /// The result as the bytes of one JSON value, which the handler vouches for.
    case result(json: [UInt8])
    case error(ResponseError)
}
