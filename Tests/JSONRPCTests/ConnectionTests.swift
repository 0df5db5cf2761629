import AgentSupport
import AgentTestSupport
import Foundation
import Synchronization
import Testing

@testable import JSONRPC

#if canImport(Glibc)
    import Glibc
    import WireFormats
#endif

/// A handler for tests: `echo` answers its params (`echoLater` after a suspension, so from another thread),
/// `block` never answers on its own (not even when cancelled), `hold` answers once `releaseHeld()` is
/// called, `noReply` returns without replying. `fast` and `fastError` are answered by `immediateReply`
/// (reaching `handle` they fail with -32098, so a test sees it when the immediate path is skipped). The
/// notification `cancelEverything` cancels every request in flight, as `exit` does in the agent.
final class TestHandler: MessageHandler {
    let notifications = Mutex<[String]>([])
    /// The ids `immediateReply` was asked about, in order.
    let immediateOrder = Mutex<[RequestID]>([])
    private let held = Mutex<(released: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func immediateReply(to request: IncomingMessage) -> ImmediateReply? {
        guard request.method.hasPrefix("fast") else { return nil }
        immediateOrder.withLock { $0.append(request.id ?? .null) }
        if request.method == "fastError" { return .error(ResponseError(code: -32099, message: "fast error")) }
        guard case .number(let n)? = request.flatParams?["n"] else { return .result(json: Array("null".utf8)) }
        return .result(json: Array(#"{"n":\#(Int(n))}"#.utf8))
    }

    func releaseHeld() {
        let waiting = held.withLock { state in
            state.released = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    func handle(_ request: IncomingMessage, context: PeerContext, reply: Reply) async {
        do {
            guard let result = try await answer(request) else { return }
            reply(result)
        } catch let error as ResponseError {
            reply(error: error)
        } catch {
            reply(error: .internalError("unexpected \(type(of: error))"))
        }
    }

    private func answer(_ request: IncomingMessage) async throws -> (any Encodable & Sendable)? {
        switch request.method {
        case "echo": return request.rawParams ?? JSONValue.null
        case "echoLater":
            await Task.yield()
            return request.rawParams ?? JSONValue.null
        case "hold":
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = held.withLock { state in
                    if !state.released { state.waiting.append(continuation) }
                    return state.released
                }
                if now { continuation.resume() }
            }
            return JSONValue.null
        case "fast", "fastError":
            throw ResponseError(code: -32098, message: "an immediate request reached handleRequest")
        case "typed":
            struct Params: Decodable { var key: String; var count: Int? }
            let params = try request.params(Params.self)
            return params.key
        case "block":
            await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
            return JSONValue.null
        case "noReply":
            return nil
        default: throw ResponseError.methodNotFound(request.method)
        }
    }

    func handle(notification: IncomingMessage, context: PeerContext) {
        notifications.withLock { $0.append(notification.method) }
        if notification.method == "cancelEverything" { context.cancelAll() }
    }
}

/// A connection over two real pipes, with the test playing the client.
final class PipePeer: Sendable {
    let connection: Connection
    private let toAgent: Int32
    private let fromAgent: Int32
    private let received = Mutex<[JSONValue]>([])
    /// The framing of each message received.
    let styles = Mutex<[FramingStyle]>([])
    private let done = Mutex(false)
    let finished: Task<Void, Never>

    /// - Parameter readingOutput: false: nothing reads the connection's output until `startReadingOutput()`.
    init(
        handler: TestHandler = TestHandler(), observer: (any MessageObserver)? = nil, maxInFlight: Int = 1024,
        maxQueuedOutputBytes: Int = 4 << 20, readingOutput: Bool = true
    ) {
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        pipe(&input)
        pipe(&output)
        connection = Connection(
            inputFD: input[0], outputFD: output[1], logger: .silent, observer: observer,
            maxInFlight: maxInFlight, maxQueuedOutputBytes: maxQueuedOutputBytes)
        toAgent = input[1]
        fromAgent = output[0]
        let connection = self.connection
        let outputFDs = output
        finished = Task.detached {
            await connection.run(handler: handler)
            close(outputFDs[1])
        }
        if readingOutput { startReadingOutput() }
    }

    func startReadingOutput() {
        let readFD = fromAgent
        let thread = Thread { [self] in
            var parser = FrameParser(maxBodyBytes: 64 << 20)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress!, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                for case .message(let body, let style) in parser.feed(buffer[0..<n]) {
                    let value =
                        (try? JSONDecoder().decode(JSONValue.self, from: Data(body))) ?? .string("<invalid JSON>")
                    self.received.withLock { $0.append(value) }
                    self.styles.withLock { $0.append(style) }
                }
            }
            self.done.withLock { $0 = true }
        }
        thread.start()
    }

    /// Writes `lines` (each under `PIPE_BUF`, so each write is whole or refused) until the connection stops
    /// taking them: the pipe stays full for `stall`. Returns how many were taken. Runs on the writes queue:
    /// the waiting must not take a thread of the cooperative pool, which the connection's tasks need.
    func sendUntilFull(_ lines: [String], stall: Duration = .seconds(1)) async -> Int {
        await withCheckedContinuation { continuation in
            writes.async { continuation.resume(returning: self.writeUntilFull(lines, stall: stall)) }
        }
    }

    private func writeUntilFull(_ lines: [String], stall: Duration) -> Int {
        let flags = fcntl(toAgent, F_GETFL)
        _ = fcntl(toAgent, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(toAgent, F_SETFL, flags) }
        let stallMilliseconds = Int32(
            stall.components.seconds * 1000 + stall.components.attoseconds / 1_000_000_000_000_000)
        for (index, line) in lines.enumerated() {
            let bytes = Array((line + "\n").utf8)
            while true {
                let n = bytes.withUnsafeBytes { write(toAgent, $0.baseAddress!, $0.count) }
                if n == bytes.count { break }
                guard n < 0, errno == EINTR || errno == EAGAIN else { return index }
                if errno == EAGAIN {
                    var wait = pollfd(fd: toAgent, events: Int16(POLLOUT), revents: 0)
                    if poll(&wait, 1, stallMilliseconds) == 0 { return index }
                }
            }
        }
        return lines.count
    }

    /// Blocking writes happen on a queue of their own, in order: a test task blocked on a full pipe must not
    /// hold one of the cooperative pool's threads that the connection needs to drain it.
    private let writes = DispatchQueue(label: "pipe-peer-writes")

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        let fd = toAgent
        writes.async { FileDescriptor.writeAll(fd, bytes) }
    }

    func closeInput() {
        let fd = toAgent
        writes.async { _ = close(fd) }
    }

    var messages: [JSONValue] { received.withLock { $0 } }

    func responses(id: JSONValue) -> [JSONValue] { messages.filter { $0["id"] == id } }

    /// Waits (with a deadline) until `condition` holds for what was received.
    func waitFor(_ what: String, timeout: Duration = .seconds(120), _ condition: ([JSONValue]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(messages) {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Closes input and waits until the connection has answered everything and stopped.
    func finish() async {
        closeInput()
        await finished.value
        while !done.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(1)) }
    }
}

func request(_ id: Int, _ method: String, _ params: String? = nil) -> String {
    #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)""# + (params.map { #","params":\#($0)"# } ?? "") + "}"
}

@Suite struct ConnectionTests {
    @Test func tenThousandPipelinedRequestsAreEachAnsweredOnce() async throws {
        let peer = PipePeer()
        peer.send((1...10_000).map { request($0, "echo", #"{"n":\#($0)}"#) }.joined(separator: "\n") + "\n")
        await peer.finish()
        var counts: [Int64: Int] = [:]
        for message in peer.messages { counts[message["id"]?.intValue ?? -1, default: 0] += 1 }
        #expect(counts.count == 10_000)
        #expect(counts.values.allSatisfy { $0 == 1 })
        #expect(peer.messages.allSatisfy { $0["result"]?["n"] == $0["id"] })
    }

    @Test func batches() async throws {
        let peer = PipePeer()
        peer.send("[" + (1...100).map { request($0, "echo") }.joined(separator: ",") + "]\n")
        peer.send("[]\n")
        peer.send(#"[{"jsonrpc":"2.0","method":"note"},{"jsonrpc":"2.0","method":"note"}]"# + "\n")
        peer.send("[1, \(request(101, "echo"))]\n")
        peer.send(request(102, "echo") + "\n")
        await peer.finish()
        let messages = peer.messages
        #expect(messages.count == 4)  // the notification batch gets no reply at all
        guard
            case .array(let first) = messages.first(where: {
                if case .array(let a) = $0 { return a.count == 100 }; return false
            })
        else {
            Issue.record("no batch of 100"); return
        }
        #expect(Set(first.compactMap { $0["id"]?.intValue }) == Set(1...100))
        #expect(messages.contains { $0["error"]?["code"] == -32600 && $0["id"] == .null })
        #expect(
            messages.contains {
                if case .array(let a) = $0 { return a.count == 2 && a[0]["error"]?["code"] == -32600 }; return false
            })
        #expect(peer.responses(id: 102).count == 1)
    }

    @Test func aBlockedRequestHoldsUpNobodyAndIsCancelledOnDemand() async throws {
        let peer = PipePeer()
        peer.send(request(1, "block") + "\n")
        peer.send((2...1001).map { request($0, "echo") }.joined(separator: "\n") + "\n")
        try await peer.waitFor("1,000 answers") { $0.count == 1000 }
        #expect(peer.responses(id: 1).isEmpty)
        #expect(peer.connection.inFlightCount == 1)
        peer.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"# + "\n")
        try await peer.waitFor("the cancellation") { $0.contains { $0["id"] == 1 } }
        #expect(peer.responses(id: 1).first?["error"]?["code"] == -32800)
        peer.send(request(2000, "echo") + "\n")
        await peer.finish()
        #expect(peer.responses(id: 1).count == 1)
        #expect(peer.responses(id: 2000).count == 1)
    }

    @Test func endOfInputWaitsForRequestsInFlight() async throws {
        let peer = PipePeer()
        peer.send(request(1, "block") + "\n")
        try await peer.waitFor("nothing") { _ in peer.connection.inFlightCount == 1 }
        peer.send(#"{"jsonrpc":"2.0","method":"cancelEverything"}"# + "\n")
        await peer.finish()
        #expect(peer.responses(id: 1).first?["error"]?["code"] == -32800)
    }

    @Test func errorsGoToTheRightIDs() async throws {
        let peer = PipePeer()
        peer.send("{broken\n")
        peer.send(#"{"jsonrpc":"2.0","id":5,"method":"ech"#.replacingOccurrences(of: "ech", with: "echo\",") + "\n")
        peer.send(#"{"jsonrpc":"1.0","id":6,"method":"echo"}"# + "\n")
        peer.send(request(7, "nope") + "\n")
        peer.send(request(8, "typed", #"{"count":"x","key":"k"}"#) + "\n")
        peer.send(request(9, "typed", #"{}"#) + "\n")
        peer.send(request(10, "noReply") + "\n")
        peer.send(#"{"jsonrpc":"2.0","id":11,"method":"echo","params":5}"# + "\n")
        peer.send("Content-Length: 2\r\n\r\n42")
        await peer.finish()
        #expect(peer.responses(id: .null).contains { $0["error"]?["code"] == -32700 })
        #expect(peer.responses(id: 5).first?["error"]?["code"] == -32700)
        #expect(peer.responses(id: 6).first?["error"]?["code"] == -32600)
        #expect(peer.responses(id: 7).first?["error"]?["code"] == -32601)
        #expect(peer.responses(id: 8).first?["error"]?["code"] == -32602)
        #expect(peer.responses(id: 8).first?["error"]?["message"]?.stringValue?.contains("count") == true)
        #expect(peer.responses(id: 9).first?["error"]?["message"]?.stringValue?.contains("'key'") == true)
        #expect(peer.responses(id: 10).first?["error"]?["code"] == -32603)
        #expect(peer.responses(id: 10).first?["error"]?["data"]?["kind"] == "internalError")
        #expect(peer.responses(id: 11).first?["error"]?["code"] == -32600)
        #expect(peer.responses(id: .null).contains { $0["error"]?["code"] == -32600 })
    }

    /// JSONDecoder (Swift 6.3.1) traps instead of throwing when the array that passes its nesting limit (512)
    /// opens on the last byte of the data; found by the fuzz suite (agent-reliability).
    @Test func aMessageEndingInTheArrayThatPassesTheNestingLimitIsAParseError() async throws {
        let peer = PipePeer()
        peer.send(
            #"{"jsonrpc":"2.0","id":12,"method":"echo","params":{"deep":"# + String(repeating: "[", count: 511) + "\n")
        peer.send(String(repeating: "[", count: 513) + "\n")
        let body = #"{"jsonrpc":"2.0","id":13,"method":"echo","params":"# + String(repeating: "[", count: 512)
        peer.send("Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        peer.send(request(14, "echo") + "\n")
        await peer.finish()
        #expect(peer.responses(id: 12).first?["error"]?["code"] == -32700)
        #expect(peer.responses(id: 13).first?["error"]?["code"] == -32700)
        #expect(peer.responses(id: .null).contains { $0["error"]?["code"] == -32700 })
        #expect(peer.responses(id: 14).first?["result"] != nil)
    }

    @Test func aReusedIDIsServedAndCancelReachesEveryRequestWithIt() async throws {
        let peer = PipePeer()
        peer.send(request(1, "block") + "\n" + request(1, "echo") + "\n")
        try await peer.waitFor("the echo") { !$0.isEmpty }
        #expect(peer.responses(id: 1).first?["result"] == .null)
        peer.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"# + "\n")
        await peer.finish()
        #expect(peer.responses(id: 1).count == 2)
        #expect(peer.responses(id: 1).last?["error"]?["code"] == -32800)
    }

    @Test func successAlwaysCarriesResultAndAnswersUseTheFirstStyle() async throws {
        let peer = PipePeer()
        let body = request(1, "echo")
        peer.send("Content-Length: \(body.utf8.count)\r\n\r\n\(body)" + request(2, "echo") + "\n")
        await peer.finish()
        #expect(peer.messages.count == 2)
        #expect(peer.messages.allSatisfy { $0["result"] == .null && $0.containsKey("result") })
    }

    @Test func notificationsReachTheHandlerAndAreNeverAnswered() async throws {
        let handler = TestHandler()
        let peer = PipePeer(handler: handler)
        peer.send(#"{"jsonrpc":"2.0","method":"hello"}"# + "\n" + request(1, "echo") + "\n")
        await peer.finish()
        #expect(handler.notifications.withLock { $0 } == ["hello"])
        #expect(peer.messages.count == 1)
    }

    @Test func seededRandomInputNeverStopsValidRequests() async throws {
        var random = SeededGenerator(seed: 42)
        let junk = [
            "{not json\n", "Content-Length: x\r\n\r\n", "[]\n", #"{"id":{},"method":1}"# + "\n", "\u{1}\u{2}\n",
            "Content-Length: 3\r\n\r\nabc", "]]]\n",
        ]
        let peer = PipePeer()
        var text = ""
        for id in 1...3000 {
            if random.next() % 2 == 0 { text += junk[Int(random.next() % UInt64(junk.count))] }
            text +=
                random.next() % 3 == 0
                ? "Content-Length: \(request(id, "echo").utf8.count)\r\n\r\n\(request(id, "echo"))"
                : request(id, "echo") + "\n"
        }
        peer.send(text)
        await peer.finish()
        for id in 1...3000 { #expect(peer.responses(id: .int(Int64(id))).count == 1, "id \(id)") }
    }
}

/// Keeps what a connection's observer saw, as text.
final class ObservedMessages: MessageObserver {
    let log = Mutex<[String]>([])
    func received(_ body: [UInt8]) { log.withLock { $0.append("in " + String(decoding: body, as: UTF8.self)) } }
    func sent(_ body: [UInt8]) { log.withLock { $0.append("out " + String(decoding: body, as: UTF8.self)) } }
}

@Suite struct MessageObserverTests {
    @Test func theObserverSeesEveryMessageInAndOutWithoutFraming() async throws {
        let observed = ObservedMessages()
        let peer = PipePeer(observer: observed)
        let body = request(1, "echo", #"{"a":1}"#)
        peer.send("Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        peer.send("{broken\n")
        await peer.finish()
        let log = observed.log.withLock { $0 }
        #expect(log.count == 4, "\(log)")
        #expect(log.first == "in " + body)
        #expect(log.contains("in {broken"))
        #expect(log.contains { $0.hasPrefix("out ") && $0.contains(#""result":{"a":1}"#) })
        #expect(log.contains { $0.hasPrefix("out ") && $0.contains("-32700") })
    }
}

extension JSONValue {
    func containsKey(_ key: String) -> Bool {
        if case .object(let members) = self { return members.keys.contains(key) }; return false
    }
}
