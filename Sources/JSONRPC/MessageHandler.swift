import WireFormats

/// What a server built on `Connection` implements: its methods. The connection owns framing, ids, batches,
/// cancellation and the one-response-per-request rule; a handler never sees it, only a `PeerContext`.
package protocol MessageHandler: Sendable {
    /// Answers a request at once when that takes no waiting (a value in memory), or returns nil to have it run
    /// by `handle(_:context:reply:)` in a task of its own. Called for every request, in arrival order, on the
    /// thread that reads input, before the next message is read: it must be quick and never block. This is the
    /// hot path: no task, no actor hop, no `JSONDecoder`.
    func immediateReply(to request: IncomingMessage) -> ImmediateReply?

    /// Answers one request through `reply`, in a task of its own. Only the first call of `reply` counts; a
    /// request that was cancelled (`$/cancelRequest`, `exit`) has already been answered and its task cancelled.
    func handle(_ request: IncomingMessage, context: PeerContext, reply: Reply) async

    /// Handles one notification from the client, in arrival order, on the reading thread: it must be quick and
    /// never block (`$/cancelRequest` never reaches it).
    func handle(notification: IncomingMessage, context: PeerContext)

    /// Reading has stopped (end of input, or `close()`): requests that wait on the client, not on work, end now.
    func inputEnded()
}

extension MessageHandler {
    package func inputEnded() {}
}

/// A request's answer given on the spot by `MessageHandler.immediateReply(to:)`.
package enum ImmediateReply: Sendable {
    /// The result as the bytes of one JSON value, which the handler vouches for.
    case result(json: [UInt8])
    case error(ResponseError)
}

/// Sends the one response of a request. The result is encoded straight onto the wire (a `JSONValue` or any
/// Encodable struct); an error goes out as it is, so it must never hold a secret.
package struct Reply: Sendable {
    package enum Outcome: Sendable {
        case result(any Encodable & Sendable)
        case error(ResponseError)
    }

    private let send: @Sendable (Outcome) -> Void

    package init(_ send: @escaping @Sendable (Outcome) -> Void) { self.send = send }

    package func callAsFunction(_ result: some Encodable & Sendable) { send(.result(result)) }
    package func callAsFunction(error: ResponseError) { send(.error(error)) }
}

/// What a handler may do to the peer, without holding the connection: notify it, read the connection's
/// figures, and end the session.
package struct PeerContext: Sendable {
    /// Sends an agent → client notification, framed in the connection's style.
    package let notify: @Sendable (_ method: String, _ params: JSONValue) -> Void
    /// Stops reading; requests already dispatched are still answered, then `Connection.run` returns.
    package let close: @Sendable () -> Void
    /// Answers every request in flight with -32800, cancels its task and closes (the `exit` notification).
    package let cancelAll: @Sendable () -> Void
    /// The connection's figures at the moment of the call.
    package let statistics: @Sendable () -> Statistics

    package struct Statistics: Sendable {
        /// Responses sent so far.
        package var requestsServed: Int
        /// Requests received and not yet answered.
        package var inFlight: Int

        package init(requestsServed: Int, inFlight: Int) {
            self.requestsServed = requestsServed
            self.inFlight = inFlight
        }
    }

    package init(
        notify: @escaping @Sendable (String, JSONValue) -> Void, close: @escaping @Sendable () -> Void,
        cancelAll: @escaping @Sendable () -> Void, statistics: @escaping @Sendable () -> Statistics
    ) {
        self.notify = notify
        self.close = close
        self.cancelAll = cancelAll
        self.statistics = statistics
    }
}
