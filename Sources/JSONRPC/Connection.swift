import AgentSupport
import Foundation

/// One JSON-RPC peer over a pair of file descriptors (stdin/stdout for the sidecar; pipes in tests).
///
/// Input is read on a dedicated thread; every request runs in its own task, so a slow request never holds
/// up the others; each request is answered exactly once. A handler starts inline on the reading thread
/// (`Task.immediate`) and moves to the cooperative pool at its first suspension, so a quick answer costs
/// no thread hop; handlers must therefore not do long synchronous work before their first `await`.
/// Answers use the framing of the first message read (Content-Length before any message). The descriptors
/// belong to the caller and are never closed here.
public final class Connection: Sendable {
    private let logger: Logger
    private let input: InputReader
    private let output: OutputWriter
    private let registry = InFlightRegistry()

    /// - Parameters:
    ///   - maxMessageBytes: larger messages are skipped unbuffered and answered -32600 when their id is readable.
    ///   - logger: framing problems and handler failures are logged here (stderr, never the protocol stream).
    public init(inputFD: Int32, outputFD: Int32, maxMessageBytes: Int = 4 << 20, logger: Logger) {
        self.logger = logger
        input = InputReader(fd: inputFD, maxBodyBytes: maxMessageBytes, logger: logger)
        output = OutputWriter(fd: outputFD, logger: logger)
    }

    /// Reads until end of input or `close`, dispatches each request in its own task, answers each exactly once.
    /// Returns after the last in-flight request has been answered and output flushed. Cancelling the task
    /// that runs it acts like `cancelAll()`. A connection runs once.
    public func run(handler: some MessageHandler) async {
        guard registry.begin() else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (ended: CheckedContinuation<Void, Never>) in
                input.start(deliver: { events in self.handle(events, handler: handler) }, ended: { ended.resume() })
            }
            logger.debug("input ended; \(registry.inFlightCount) request(s) still in flight")
            await registry.drain()
            await output.idle()
        } onCancel: {
            cancelAll()
        }
    }

    /// Sends a notification (agent → client), framed in the connection's style.
    public func sendNotification(_ method: String, params: JSONValue) {
        do {
            output.send(try OutgoingMessage.notification(method: method, params: params))
        } catch {
            logger.error("notification '\(method)' could not be encoded; not sent")
        }
    }

    /// Stops reading; in-flight requests still get their answers; `run` then returns. Messages already read
    /// but not yet dispatched are dropped. The reading thread may stay blocked in `read` until input arrives.
    public func close() {
        registry.stopAccepting()
        input.stop()
    }

    /// Cancels every in-flight request (each answered -32800 at once, a later result from its handler is
    /// dropped) and notification handler, then behaves like `close()` (used by `exit`).
    public func cancelAll() {
        let entries = registry.claimAll()
        for entry in entries {
            entry.task?.cancel()
            answer(entry, .failure(.cancelled))
        }
        close()
    }

    /// Requests being handled and not yet answered.
    public var inFlightCount: Int { registry.inFlightCount }

    /// Responses sent so far (each batch element counts; errors count).
    public var requestsServed: Int { registry.requestsServed }

    // MARK: - Dispatch

    /// The events of one read, on the reading thread.
    private func handle(_ events: [FrameEvent], handler: some MessageHandler) {
        // Answers to the messages of one read leave together (most complete inline, see `startRequest`).
        output.hold()
        defer { output.release() }
        for event in events {
            guard registry.isAccepting else { return }
            handle(event, handler: handler)
        }
    }

    private func handle(_ event: FrameEvent, handler: some MessageHandler) {
        switch event {
        case .problem(let problem):
            logger.warning("framing problem: \(problem)")
            if let id = problem.recoveredID { replyNow(id, Self.error(for: problem)) }
        case .message(let bytes, let style):
            output.adoptStyle(style)
            dispatch(MessageDecoder.decode(Data(bytes)), handler: handler, reply: .single)
        }
    }

    private static func error(for problem: FramingProblem) -> ResponseError {
        switch problem.kind {
        case .headerTooLarge, .bodyTooLarge: return .invalidRequest("invalid request: message too large")
        case .truncatedAtEndOfInput: return .parseError("parse error: the message was cut short by the end of input")
        case .missingContentLength, .invalidContentLength, .conflictingContentLength, .unexpectedBytes:
            return .invalidRequest("invalid request: \(problem.detail)")
        }
    }

    /// Starts (or answers at once) one decoded message; `reply` says where a request's answer goes.
    private func dispatch(_ decoded: DecodedMessage, handler: some MessageHandler, reply: InFlightRegistry.Reply) {
        switch decoded {
        case .request(let message, let id):
            startRequest(message, id: id, handler: handler, reply: reply)
        case .notification(let message):
            startNotification(message, handler: handler)
        case .invalid(let id, let error):
            logger.debug("rejected a message: \(error.message)" + (id.map { " (id \($0))" } ?? ""))
            registry.countServed()
            deliver(OutgoingMessage.response(id: id ?? .null, outcome: .failure(error)), to: reply)
        case .response(let id):
            logger.warning("ignored a response (id \(id.map(\.description) ?? "none")): this connection sends no requests")
        case .batch(let elements):
            startBatch(elements, handler: handler)
        }
    }

    private func startBatch(_ elements: [Data], handler: some MessageHandler) {
        guard !elements.isEmpty else {
            replyNow(.null, .invalidRequest("invalid request: empty batch"))
            return
        }
        let decoded = elements.map(MessageDecoder.decodeBatchElement)
        let collector = BatchCollector(count: decoded.filter(Self.isAnswered).count)
        var slot = 0
        for element in decoded {
            guard Self.isAnswered(element) else {
                dispatch(element, handler: handler, reply: .single)
                continue
            }
            dispatch(element, handler: handler, reply: .batchSlot(collector, slot))
            slot += 1
        }
    }

    private static func isAnswered(_ message: DecodedMessage) -> Bool {
        switch message {
        case .request, .invalid: return true
        case .notification, .response, .batch: return false
        }
    }

    private func startRequest(_ message: IncomingMessage, id: RequestID, handler: some MessageHandler, reply: InFlightRegistry.Reply) {
        if message.method == "$/cancelRequest" {
            cancelRequest(message)
            registry.countServed()
            deliver(OutgoingMessage.response(id: id, outcome: .success(.null)), to: reply)
            return
        }
        switch registry.register(id: id, reply: reply) {
        case .registered(let key):
            // Runs inline until the handler first suspends: a quick answer costs no thread hop.
            registry.attach(Task.immediate { await self.serve(message, key: key, handler: handler) }, to: key)
        case .duplicate:
            logger.debug("rejected request \(id): that id is already in flight")
            registry.countServed()
            deliver(OutgoingMessage.response(id: id, outcome: .failure(.invalidRequest("invalid request: id \(id) is already in flight"))), to: reply)
        case .closed:
            registry.countServed()
            deliver(OutgoingMessage.response(id: id, outcome: .failure(.cancelled)), to: reply)
        }
    }

    private func serve(_ message: IncomingMessage, key: UInt64, handler: some MessageHandler) async {
        let outcome: Result<JSONValue, ResponseError>
        do {
            outcome = .success(try await handler.handleRequest(message, connection: self))
        } catch let error as ResponseError {
            outcome = .failure(error)
        } catch is CancellationError {
            outcome = .failure(.cancelled)
        } catch {
            logger.error("'\(message.method)' failed with an error of type \(type(of: error)); answered -32603")
            outcome = .failure(.internalError("internal error"))
        }
        // Nothing to claim when `$/cancelRequest` or `cancelAll` already answered: the late result is dropped.
        guard let entry = registry.claim(key) else { return }
        answer(entry, outcome)
    }

    private func startNotification(_ message: IncomingMessage, handler: some MessageHandler) {
        if message.method == "$/cancelRequest" {
            cancelRequest(message)
            return
        }
        guard case .registered(let key) = registry.register(id: nil, reply: nil) else { return }
        let task = Task.immediate {
            await handler.handleNotification(message, connection: self)
            if let entry = self.registry.claim(key) { self.answer(entry, .success(.null)) }
        }
        registry.attach(task, to: key)
    }

    private struct CancelParams: Decodable {
        let id: RequestID
    }

    /// `$/cancelRequest {"id": X}`: answers X with -32800 at once and cancels its task.
    private func cancelRequest(_ message: IncomingMessage) {
        guard let params = try? message.params(CancelParams.self) else {
            logger.warning("ignored a $/cancelRequest without a valid id")
            return
        }
        guard let entry = registry.claim(id: params.id) else {
            logger.debug("$/cancelRequest for \(params.id), which is not in flight")
            return
        }
        entry.task?.cancel()
        answer(entry, .failure(.cancelled))
    }

    /// Sends a claimed entry's answer (requests only) and marks it finished.
    private func answer(_ entry: InFlightRegistry.Entry, _ outcome: Result<JSONValue, ResponseError>) {
        if let reply = entry.reply, let id = entry.id {
            deliver(OutgoingMessage.response(id: id, outcome: outcome), to: reply)
        }
        registry.finished()
    }

    private func replyNow(_ id: RequestID, _ error: ResponseError) {
        registry.countServed()
        output.send(OutgoingMessage.response(id: id, outcome: .failure(error)))
    }

    private func deliver(_ body: [UInt8], to reply: InFlightRegistry.Reply) {
        switch reply {
        case .single:
            output.send(body)
        case .batchSlot(let collector, let slot):
            if let batch = collector.fill(slot, with: body) { output.send(batch) }
        }
    }
}
