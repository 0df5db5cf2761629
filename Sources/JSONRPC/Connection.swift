import AgentSupport
import Foundation
import Synchronization

/// One JSON-RPC 2.0 peer over a pair of file descriptors, language-server style.
///
/// Every request runs in its own task, so a slow one never holds up the others; every request gets exactly
/// one response, whether it succeeds, fails, is cancelled, or is still running when input ends.
public final class Connection: Sendable {
    /// A request between its arrival and its one response.
    private final class Pending: Sendable {
        let serial: Int
        let id: RequestID
        let deliver: @Sendable (Response) -> Void
        let task = Mutex<Task<Void, Never>?>(nil)

        init(serial: Int, id: RequestID, deliver: @escaping @Sendable (Response) -> Void) {
            self.serial = serial
            self.id = id
            self.deliver = deliver
        }
    }

    private struct State {
        var style: FramingStyle?
        var pending: [Int: Pending] = [:]
        /// In-flight requests by id; a client may reuse an id, so one id can name several.
        var serialsByID: [RequestID: Set<Int>] = [:]
        var nextSerial = 0
        var served = 0
        var inputEnded = false
        var closed = false
        var input: AsyncStream<FrameEvent>.Continuation?
        /// Responses claimed but still being written.
        var answering = 0
        /// `run` waits here for the last answer once input has ended.
        var idle: CheckedContinuation<Void, Never>?

        var isIdle: Bool { pending.isEmpty && answering == 0 }
    }

    private let inputFD: Int32
    private let maxMessageBytes: Int
    private let logger: Logger
    private let writer: OutputWriter
    private let observer: (any MessageObserver)?
    private let state = Mutex(State())

    /// - Parameter observer: sees every message received and sent (nil: none does).
    public init(inputFD: Int32, outputFD: Int32, maxMessageBytes: Int = 4 << 20, logger: Logger, observer: (any MessageObserver)? = nil) {
        self.inputFD = inputFD
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
        self.observer = observer
        writer = OutputWriter(fd: outputFD, logger: logger)
    }

    /// Requests received and not yet answered.
    public var inFlightCount: Int { state.withLock { $0.pending.count } }
    /// Responses sent so far.
    public var requestsServed: Int { state.withLock { $0.served } }

    // MARK: Running

    /// Reads until end of input or `close()`, answering every request; returns once the last one is answered
    /// and written.
    public func run(handler: some MessageHandler) async {
        let (stream, continuation) = AsyncStream.makeStream(of: FrameEvent.self)
        let alreadyClosed = state.withLock { state in
            state.input = continuation
            return state.closed
        }
        if alreadyClosed { continuation.finish() }
        InputReader.start(fd: inputFD, maxBodyBytes: maxMessageBytes, into: continuation)
        for await event in stream {
            switch event {
            case .message(let bytes, let style):
                state.withLock { if $0.style == nil { $0.style = style } }
                observer?.received(bytes)
                await receive(Data(bytes), handler: handler)
            case .problem(let problem):
                report(problem)
            }
        }
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

    /// Stops reading. Requests already read are still answered; then `run` returns.
    public func close() {
        let input = state.withLock { state -> AsyncStream<FrameEvent>.Continuation? in
            state.closed = true
            return state.input
        }
        input?.finish()
    }

    /// Answers every request in flight with -32800 and cancels its task, then closes (the `exit` notification).
    public func cancelAll() {
        let all = state.withLock { Array($0.pending.values) }
        for pending in all { cancel(pending) }
        close()
    }

    /// Sends an agent → client notification, framed in the connection's style.
    public func sendNotification(_ method: String, params: JSONValue) {
        write(WireEncoding.encode(OutgoingNotification(method: method, params: params)))
    }

    // MARK: Receiving

    private func receive(_ data: Data, handler: some MessageHandler) async {
        // No JSON text ends with `[`, and JSONDecoder (Swift 6.3.1) traps instead of throwing when the array that
        // passes its nesting limit opens on the last byte: such a message is answered without being decoded.
        if data.last == UInt8(ascii: "[") {
            send(.error(.parseError("parse error: the message is not valid JSON"), id: LenientIDScanner.scan(data)))
            return
        }
        if data.first(where: { !Self.isWhitespace($0) }) == UInt8(ascii: "[") {
            receiveBatch(data, handler: handler)
            return
        }
        guard let message = decode(data, deliver: { [self] in send($0) }) else { return }
        if message.id == nil {
            await notify(message, handler: handler)
        } else {
            start(message, handler: handler) { [self] in send($0) }
        }
    }

    private func receiveBatch(_ data: Data, handler: some MessageHandler) {
        guard let elements = try? JSONDecoder().decode([JSONValue].self, from: data) else {
            send(.error(.parseError("parse error: the batch is not valid JSON"), id: LenientIDScanner.scan(data)))
            return
        }
        guard !elements.isEmpty else {
            send(.error(.invalidRequest("an empty batch is not a request"), id: nil))
            return
        }
        let collector = BatchCollector { [self] responses in
            state.withLock { $0.served += responses.count }
            write(WireEncoding.encode(responses))
        }
        var messages: [(IncomingMessage, Int)] = []
        for element in elements {
            guard case .object = element, let raw = try? JSONEncoder().encode(element) else {
                collector.fill(collector.reserve(), with: .error(.invalidRequest("a batch element must be an object"), id: nil))
                continue
            }
            let slot = collector.reserve()
            guard let message = decode(raw, deliver: { collector.fill(slot, with: $0) }) else { continue }
            if message.id == nil {
                collector.release(slot)
                // Notifications in a batch are handled like any other, without a reply.
                Task { await self.notify(message, handler: handler) }
            } else {
                messages.append((message, slot))
            }
        }
        collector.sealed()
        for (message, slot) in messages {
            start(message, handler: handler) { collector.fill(slot, with: $0) }
        }
    }

    /// Decodes one message; an invalid one is answered through `deliver` and yields nil.
    private func decode(_ data: Data, deliver: @Sendable (Response) -> Void) -> IncomingMessage? {
        let envelope: Envelope
        do {
            envelope = try JSONDecoder().decode(Envelope.self, from: data)
        } catch DecodingError.typeMismatch {
            deliver(.error(.invalidRequest("a message must be a JSON object"), id: nil))
            return nil
        } catch {
            let id = LenientIDScanner.scan(data)
            logger.warning("unparseable message\(id.map { " (id \($0))" } ?? "")")
            deliver(.error(.parseError("parse error: the message is not valid JSON"), id: id))
            return nil
        }
        if envelope.isResponse {
            logger.debug("ignoring a response from the client")
            return nil
        }
        do {
            return try envelope.incoming(raw: data)
        } catch {
            guard case .invalid(let reason, let id) = error else { return nil }
            deliver(.error(.invalidRequest("invalid request: \(reason)"), id: id))
            return nil
        }
    }

    private func notify(_ message: IncomingMessage, handler: some MessageHandler) async {
        if message.method == "$/cancelRequest" {
            guard let params = try? message.params(CancelParams.self) else {
                logger.warning("$/cancelRequest without a valid 'id'")
                return
            }
            let targets = state.withLock { state in (state.serialsByID[params.id] ?? []).compactMap { state.pending[$0] } }
            for pending in targets { cancel(pending) }
            return
        }
        await handler.handleNotification(message, connection: self)
    }

    private struct CancelParams: Decodable { var id: RequestID }

    // MARK: Requests in flight

    /// Runs `message` in its own task; its one response goes to `deliver`.
    private func start(_ message: IncomingMessage, handler: some MessageHandler, deliver: @escaping @Sendable (Response) -> Void) {
        let id = message.id ?? .null
        let pending = state.withLock { state in
            state.nextSerial += 1
            let pending = Pending(serial: state.nextSerial, id: id, deliver: deliver)
            state.pending[pending.serial] = pending
            state.serialsByID[id, default: []].insert(pending.serial)
            return pending
        }
        let serial = pending.serial
        let method = message.method
        let task = Task { [self, logger] in
            let outcome: Result<any Encodable & Sendable, ResponseError>
            do {
                outcome = .success(try await handler.handleRequest(message, connection: self))
            } catch let error as ResponseError {
                outcome = .failure(error)
            } catch is CancellationError {
                outcome = .failure(.cancelled)
            } catch {
                logger.error("\(method): unexpected \(type(of: error))")
                outcome = .failure(.internalError("internal error"))
            }
            answer(serial, with: Response(id: id, outcome: outcome))
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
        claimed.deliver(response)
        let idle = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.answering -= 1
            guard state.isIdle, state.inputEnded, let idle = state.idle else { return nil }
            state.idle = nil
            return idle
        }
        idle?.resume()
    }

    // MARK: Output

    private func report(_ problem: FramingProblem) {
        logger.warning("framing: \(problem.detail)\(problem.recoveredID.map { " (request id \($0))" } ?? "")")
        guard let id = problem.recoveredID else { return }
        let error: ResponseError
        switch problem.kind {
        case .bodyTooLarge, .headerTooLarge: error = .invalidRequest("message too large: \(problem.detail)")
        case .truncatedAtEndOfInput: error = .parseError("message truncated: \(problem.detail)")
        default: error = .invalidRequest("malformed frame: \(problem.detail)")
        }
        send(.error(error, id: id))
    }

    /// Sends one response on its own.
    private func send(_ response: Response) {
        state.withLock { $0.served += 1 }
        write(WireEncoding.encode(response))
    }

    private func write(_ body: [UInt8]) {
        observer?.sent(body)
        let style = state.withLock { $0.style } ?? .newlineDelimited
        writer.write(WireEncoding.frame(body, style: style))
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
}
