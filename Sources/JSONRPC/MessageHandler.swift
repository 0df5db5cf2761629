/// What a server built on `Connection` implements: the methods. The connection owns framing, ids,
/// batches, cancellation and the one-response-per-request rule.
public protocol MessageHandler: Sendable {
    /// Answers one request with its result, encoded straight onto the wire (a `JSONValue` or any Codable
    /// struct). Throw `ResponseError` for an error the client should see as is; any other error becomes
    /// -32603 with a generic message (never the error's text, which might hold a secret).
    func handleRequest(_ request: IncomingMessage, connection: Connection) async throws -> any Encodable & Sendable

    /// Handles one notification from the client, in arrival order (`$/cancelRequest` never reaches it).
    func handleNotification(_ notification: IncomingMessage, connection: Connection) async
}
