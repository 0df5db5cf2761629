/// What the agent implements: the methods. The connection does framing, dispatch, cancellation and replies.
public protocol MessageHandler: Sendable {
    /// Answers one request. Throw `ResponseError` for protocol-level errors; any other error becomes -32603
    /// with a generic message (never the error's text, which might hold a secret). Runs in its own task,
    /// which is cancelled by `$/cancelRequest`; a result returned after cancellation is dropped.
    func handleRequest(_ request: IncomingMessage, connection: Connection) async throws -> JSONValue

    /// Handles one notification from the client (`$/cancelRequest` is handled by the connection itself).
    func handleNotification(_ notification: IncomingMessage, connection: Connection) async
}
