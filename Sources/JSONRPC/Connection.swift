import AgentSupport
import Foundation
import Synchronization
import WireFormats

/// One JSON-RPC 2.0 peer over a pair of file descriptors, language-server style.
///
/// Input is read, cut into messages and dispatched on a thread of its own. A request the handler can answer
/// at once (`MessageHandler.immediateReply`) is answered right there, and the answers to one read leave in
/// one `write(2)`; every other request runs in its own task, so a slow one never holds up the others. Every
/// request gets exactly one response, whether it succeeds, fails, is cancelled, or is still running when
/// input ends. Reading pauses while too many requests are in flight or too much output is queued.
package final class Connection: Sendable {
    /// A request between its arrival and its one response.
    private final class Pending: Sendable {
        let serial: Int
        let id: RequestID
        let method: String
        let deliver: @Sendable ([UInt8]) -> Void
        let task = Mutex<Task<Void, Never>?>(nil)

        init(serial: Int, id: RequestID, method: String, deliver: @escaping @Sendable ([UInt8]) -> Void) {
            self.serial = serial
            self.id = id
            self.method = method
            self.deliver = deliver
        }
    }

    private struct State {
        /// The framing of the first message read: the agent's notifications go in it.
        var style: FramingStyle?
        var pending: [Int: Pending] = [:]
        /// In-flight requests by id; a client may reuse an id, so one id can name several.
        var serialsByID: [RequestID: Set<Int>] = [:]
        var nextSerial = 0
        var inputEnded = false
        /// Responses claimed but still being written.
        var answering = 0
        /// `run` waits here for the last answer once input has ended.
        var idle: CheckedContinuation<Void, Never>?

        var isIdle: Bool { pending.isEmpty && answering == 0 }
    }

    private let logger: Logger
    private let writer: OutputWriter
    private let reader: InputReader
    private let gate: InputGate
    private let observer: (any MessageObserver)?
    private let state = Mutex(State())
    private let served = Atomic(0)
    private let maxInFlight: Int
    private let maxQueuedOutputBytes: Int

    /// - Parameters:
    ///   - observer: sees every message received and sent (nil: none does).
    ///   - maxInFlight, maxQueuedOutputBytes: reading pauses while this many requests are in flight, or this
    ///     many bytes of output wait behind a write the client is slow to take.
    package init(
        inputFD: Int32, outputFD: Int32, maxMessageBytes: Int = 4 << 20, logger: Logger,
        observer: (any MessageObserver)? = nil,
        maxInFlight: Int = 1024, maxQueuedOutputBytes: Int = 4 << 20
    ) {
        self.logger = logger
        self.observer = observer
        self.maxInFlight = maxInFlight
        self.maxQueuedOutputBytes = maxQueuedOutputBytes
        let gate = InputGate()
        self.gate = gate
        writer = OutputWriter(fd: outputFD, logger: logger, wrote: { gate.mayHaveOpened() })
        reader = InputReader(fd: inputFD, maxBodyBytes: maxMessageBytes, gate: gate)
    }

    /// Requests received and not yet answered.
    package var inFlightCount: Int { state.withLock { $0.pending.count } }
    /// The requests in flight, oldest first, as `method (id N)`: names and ids only, never params.
    package var inFlightRequests: [String] {
        state.withLock { $0.pending.values.sorted { $0.serial < $1.serial }.map { "\($0.method) (id \($0.id))" } }
    }
    /// Responses sent so far.
    package var requestsServed: Int { served.load(ordering: .relaxed) }

    // MARK: Running

    /// Reads until end of input or `close()`, answering every request; returns once the last one is answered
    /// and written.
    package func run(handler: some MessageHandler) async {
        let context = PeerContext(
            notify: { [self] method, params in sendNotification(method, params: params) },
            close: { [self] in close() },
            cancelAll: { [self] in cancelAll() },
            statistics: { [self] in .init(requestsServed: requestsServed, inFlight: inFlightCount) })
        await withCheckedContinuation { (ended: CheckedContinuation<Void, Never>) in
            reader.start(
                mustWait: { [self] in inFlightCount >= maxInFlight || writer.queuedBytes >= maxQueuedOutputBytes },
                deliver: { [self] events in receive(events, handler: handler, context: context) },
                ended: { ended.resume() })
        }
        let inFlight = inFlightRequests
        if !reader.isStopped, !inFlight.isEmpty {
            // Said at once: a person who pressed Ctrl-D sees why the agent has not exited yet.
            logger.notice(
                "end of input: finishing \(inFlight.count) request\(inFlight.count == 1 ? "" : "s") in flight "
                    + "before exiting (\(inFlight.prefix(5).joined(separator: ", "))\(inFlight.count > 5 ? ", …" : ""))"
            )
        }
        handler.inputEnded()
        await withCheckedContinuation { (idle: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                state.inputEnded = true
                if state.isIdle { return true }
                state.idle = idle
                return false
            }
            if done { idle.resume() }
        }
        // Let the last bytes leave, unless the client has stopped reading altogether.
        let deadline = ContinuousClock.now + .seconds(5)
        while writer.isBusy && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(1)) }
    }

    /// Stops reading. Requests already dispatched are still answered; then `run` returns.
    package func close() {
        reader.stop()
    }

    /// Answers every request in flight with -32800 and cancels its task, then closes (the `exit` notification).
    private func cancelAll() {
        let all = state.withLock { Array($0.pending.values) }
        for pending in all { cancel(pending) }
        close()
    }

    /// Sends an agent → client notification, framed in the style of the first message read.
    private func sendNotification(_ method: String, params: JSONValue) {
        guard let body = WireEncoding.encodeValue(OutgoingNotification(method: method, params: params)) else {
            logger.error("notification '\(method)' could not be encoded; not sent")
            return
        }
        write(body, style: state.withLock { $0.style } ?? .newlineDelimited)
    }

    // MARK: Receiving (on the reading thread)

    /// The events of one read. Immediate answers gather in one buffer that is written at the end.
    private func receive(_ events: [FrameEvent], handler: some MessageHandler, context: PeerContext) {
        var immediate = ImmediateAnswers(observer: observer)
        var connectionStyle = state.withLock { $0.style }
        for event in events {
            guard !reader.isStopped else { break }
            switch event {
            case .message(let bytes, let style):
                if connectionStyle == nil {
                    connectionStyle = style
                    state.withLock { $0.style = style }
                }
                // Every answer goes in the framing of the message it answers.
                immediate.style = style
                observer?.received(bytes)
                receive(bytes, style: style, handler: handler, context: context, immediate: &immediate)
            case .problem(let problem):
                report(problem, style: problem.style ?? connectionStyle ?? .newlineDelimited)
            }
        }
        writer.write(immediate.bytes)
    }

    private func receive(
        _ bytes: [UInt8], style: FramingStyle, handler: some MessageHandler, context: PeerContext,
        immediate: inout ImmediateAnswers
    ) {
        // No JSON text ends with `[`, and JSONDecoder (Swift 6.3.1) traps instead of throwing when the array that
        // passes its nesting limit opens on the last byte: such a message is answered without being decoded.
        if bytes.last == UInt8(ascii: "[") {
            send(
                Response.error(
                    .parseError("parse error: the message is not valid JSON"), id: LenientIDScanner.scan(bytes)
                ).body, style: style)
            return
        }
        if bytes.first(where: { !Self.isWhitespace($0) }) == UInt8(ascii: "[") {
            receiveBatch(bytes, style: style, handler: handler, context: context)
            return
        }
        guard let message = read(bytes, deliver: { [self] in send($0, style: style) }) else { return }
        guard let id = message.id else {
            notify(message, handler: handler, context: context)
            return
        }
        if let reply = handler.immediateReply(to: message) {
            served.add(1, ordering: .relaxed)
            immediate.append(Response(id: id, outcome: reply.outcome))
        } else {
            start(message, id: id, handler: handler, context: context) { [self] in send($0, style: style) }
        }
    }

    private func receiveBatch(
        _ bytes: [UInt8], style: FramingStyle, handler: some MessageHandler, context: PeerContext
    ) {
        // Validated by JSONDecoder, then cut into its elements' own bytes (so a duplicated member is still seen).
        guard (try? JSONDecoder().decode([JSONValue].self, from: Data(bytes))) != nil,
            let elements = JSONLayout.elements(ofArray: bytes)
        else {
            send(
                Response.error(
                    .parseError("parse error: the batch is not valid JSON"), id: LenientIDScanner.scan(bytes)
                ).body, style: style)
            return
        }
        guard !elements.isEmpty else {
            send(Response.error(.invalidRequest("an empty batch is not a request"), id: nil).body, style: style)
            return
        }
        let collector = BatchCollector { [self] bodies in
            served.add(bodies.count, ordering: .relaxed)
            write(WireEncoding.batch(bodies), style: style)
        }
        var messages: [(IncomingMessage, RequestID, Int)] = []
        for element in elements {
            let raw = Array(bytes[element])
            guard raw.first == UInt8(ascii: "{") else {
                collector.fill(
                    collector.reserve(),
                    with: Response.error(.invalidRequest("a batch element must be an object"), id: nil).body)
                continue
            }
            let slot = collector.reserve()
            guard let message = read(raw, deliver: { collector.fill(slot, with: $0) }) else { continue }
            if let id = message.id {
                messages.append((message, id, slot))
            } else {
                collector.release(slot)
                // Notifications in a batch are handled like any other, without a reply.
                notify(message, handler: handler, context: context)
            }
        }
        collector.sealed()
        for (message, id, slot) in messages {
            if let reply = handler.immediateReply(to: message) {
                collector.fill(slot, with: Response(id: id, outcome: reply.outcome).body)
            } else {
                start(message, id: id, handler: handler, context: context) { collector.fill(slot, with: $0) }
            }
        }
    }

    /// Reads one message: the common request with `RequestScanner`, anything else (errors to report, unusual
    /// spellings) with `Envelope`. An invalid one is answered through `deliver` and yields nil.
    private func read(_ bytes: [UInt8], deliver: @Sendable ([UInt8]) -> Void) -> IncomingMessage? {
        IncomingMessage(reading: bytes) ?? decode(bytes, deliver: deliver)
    }

    /// Decodes one message with `JSONDecoder`; an invalid one is answered through `deliver` and yields nil.
    private func decode(_ bytes: [UInt8], deliver: @Sendable ([UInt8]) -> Void) -> IncomingMessage? {
        let envelope: Envelope
        do {
            envelope = try JSONDecoder().decode(Envelope.self, from: Data(bytes))
        } catch DecodingError.typeMismatch {
            deliver(Response.error(.invalidRequest("a message must be a JSON object"), id: nil).body)
            return nil
        } catch {
            let id = LenientIDScanner.scan(bytes)
            logger.warning("unparseable message\(id.map { " (id \($0))" } ?? "")")
            deliver(Response.error(.parseError("parse error: the message is not valid JSON"), id: id).body)
            return nil
        }
        if envelope.isResponse {
            logger.debug("ignoring a response from the client")
            return nil
        }
        do {
            return try envelope.incoming(raw: bytes)
        } catch {
            guard case .invalid(let reason, let id) = error else { return nil }
            deliver(Response.error(.invalidRequest("invalid request: \(reason)"), id: id).body)
            return nil
        }
    }

    /// Handles a notification on the reading thread, before the next message is read, so notifications keep
    /// their order and nothing after `exit` is dispatched.
    private func notify(_ message: IncomingMessage, handler: some MessageHandler, context: PeerContext) {
        if message.method == "$/cancelRequest" {
            cancelRequest(message)
        } else {
            handler.handle(notification: message, context: context)
        }
    }

    private func cancelRequest(_ message: IncomingMessage) {
        guard let params = try? message.params(CancelParams.self) else {
            logger.warning("$/cancelRequest without a valid 'id'")
            return
        }
        let targets = state.withLock { state in (state.serialsByID[params.id] ?? []).compactMap { state.pending[$0] } }
        for pending in targets { cancel(pending) }
    }

    private struct CancelParams: Decodable { var id: RequestID }

    // MARK: Requests in flight

    /// Runs `message` in its own task; its one response goes to `deliver`. The task starts on the calling
    /// thread and leaves it at its first suspension, so no thread hop is paid before the handler's own.
    private func start(
        _ message: IncomingMessage, id: RequestID, handler: some MessageHandler, context: PeerContext,
        deliver: @escaping @Sendable ([UInt8]) -> Void
    ) {
        let pending = state.withLock { state in
            state.nextSerial += 1
            let pending = Pending(serial: state.nextSerial, id: id, method: message.method, deliver: deliver)
            state.pending[pending.serial] = pending
            state.serialsByID[id, default: []].insert(pending.serial)
            return pending
        }
        let serial = pending.serial
        let method = message.method
        let task = Task.immediate { [self, logger] in
            await handler.handle(
                message, context: context,
                reply: Reply { [self] outcome in
                    answer(serial, with: Response(id: id, outcome: outcome.responseOutcome))
                })
            // Still pending: neither answered nor cancelled (a handler's bug); the client must not wait forever.
            if state.withLock({ $0.pending[serial] != nil }) {
                logger.error("\(method): the handler returned without replying")
                answer(serial, with: .error(.internalError("internal error"), id: id))
            }
        }
        pending.task.withLock { $0 = task }
    }

    private func cancel(_ pending: Pending) {
        answer(pending.serial, with: .error(.cancelled, id: pending.id))
        pending.task.withLock { $0 }?.cancel()
    }

    /// Sends the response of request `serial` unless it was already answered (exactly once, whoever is first).
    private func answer(_ serial: Int, with response: Response) {
        let claimed = state.withLock { state -> Pending? in
            guard let pending = state.pending.removeValue(forKey: serial) else { return nil }
            state.serialsByID[pending.id]?.remove(serial)
            if state.serialsByID[pending.id]?.isEmpty == true { state.serialsByID[pending.id] = nil }
            state.answering += 1
            return pending
        }
        guard let claimed else { return }
        claimed.deliver(response.body)
        let idle = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.answering -= 1
            guard state.isIdle, state.inputEnded, let idle = state.idle else { return nil }
            state.idle = nil
            return idle
        }
        idle?.resume()
        gate.mayHaveOpened()
    }

    // MARK: Output

    private func report(_ problem: FramingProblem, style: FramingStyle) {
        logger.warning("framing: \(problem.detail)\(problem.recoveredID.map { " (request id \($0))" } ?? "")")
        guard let id = problem.recoveredID else { return }
        let error: ResponseError
        switch problem.kind {
        case .bodyTooLarge, .headerTooLarge: error = .invalidRequest("message too large: \(problem.detail)")
        case .truncatedAtEndOfInput: error = .parseError("message truncated: \(problem.detail)")
        default: error = .invalidRequest("malformed frame: \(problem.detail)")
        }
        send(Response.error(error, id: id).body, style: style)
    }

    /// Sends one response on its own, in `style`.
    private func send(_ body: [UInt8], style: FramingStyle) {
        served.add(1, ordering: .relaxed)
        write(body, style: style)
    }

    private func write(_ body: [UInt8], style: FramingStyle) {
        observer?.sent(body)
        writer.write(WireEncoding.frame(body, style: style))
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}

/// The answers given at once to the requests of one read, framed and gathered for one write.
private struct ImmediateAnswers {
    let observer: (any MessageObserver)?
    var style = FramingStyle.newlineDelimited
    var bytes: [UInt8] = []

    init(observer: (any MessageObserver)?) { self.observer = observer }

    mutating func append(_ response: Response) {
        if observer == nil && style == .newlineDelimited {
            response.append(to: &bytes)
            bytes.append(0x0A)
            return
        }
        let body = response.body
        observer?.sent(body)
        WireEncoding.appendFrame(body, style: style, to: &bytes)
    }
}

extension Reply.Outcome {
    var responseOutcome: Response.Outcome {
        switch self {
        case .result(let value): return .result(value)
        case .error(let error): return .error(error)
        }
    }
}

extension ImmediateReply {
    var outcome: Response.Outcome {
        switch self {
        case .result(let json): return .encodedResult(json)
        case .error(let error): return .error(error)
        }
    }
}
