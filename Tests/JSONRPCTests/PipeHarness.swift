import AgentSupport
import Dispatch
import Foundation
import Synchronization
import Testing
@testable import JSONRPC

#if canImport(Glibc)
import Glibc
#endif

/// A `Connection` wired to two real pipes, with the test playing the client: requests are written from a
/// serial queue (never blocking the cooperative pool) and replies are read and parsed on a thread of their
/// own. Every descriptor is closed exactly once, by its only user, so parallel tests never touch each
/// other's reused descriptor numbers.
final class PipeHarness: Sendable {
    let connection: Connection
    let replies = ReplyCollector()
    private let clientWrite: Int32
    private let connectionRead: Int32
    private let connectionWrite: Int32
    private let clientRead: Int32
    private let readsReplies: Bool
    private let writer = DispatchQueue(label: "test.client.writer")
    /// Whether `clientWrite` was closed (changed on `writer` only).
    private let inputClosed = Mutex(false)

    /// - Parameter readsReplies: false for a client that vanished (its end of the output pipe is closed at once).
    init(maxMessageBytes: Int = 4 << 20, logger: Logger = .silent, readsReplies: Bool = true) {
        signal(SIGPIPE, SIG_IGN)
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        precondition(pipe(&input) == 0 && pipe(&output) == 0)
        connectionRead = input[0]
        clientWrite = input[1]
        clientRead = output[0]
        connectionWrite = output[1]
        self.readsReplies = readsReplies
        connection = Connection(inputFD: connectionRead, outputFD: connectionWrite, maxMessageBytes: maxMessageBytes, logger: logger)
        if readsReplies {
            let replies = self.replies
            let fd = clientRead
            Thread { replies.read(from: fd) }.start()
        } else {
            _ = Glibc.close(clientRead)
        }
    }

    func send(_ bytes: [UInt8]) {
        let fd = clientWrite
        writer.async { _ = POSIXIO.writeAll(fd, bytes) }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Sends each body with a Content-Length header.
    func sendFramed(_ bodies: [String]) { send(bodies.flatMap { Frames.framed($0) }) }

    /// End of input for the connection, after everything sent so far.
    func closeInput() {
        writer.async { self.closeInputOnWriter() }
    }

    private func closeInputOnWriter() {
        let close = inputClosed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        if close { _ = Glibc.close(clientWrite) }
    }

    /// Runs the connection to completion after closing its input, then returns every reply.
    func runToEnd(_ handler: some MessageHandler) async -> [Reply] {
        closeInput()
        await connection.run(handler: handler)
        return await finish()
    }

    /// After `run` returned: closes the remaining descriptors and returns every reply.
    func finish() async -> [Reply] {
        await withCheckedContinuation { done in
            writer.async {
                self.closeInputOnWriter()
                done.resume()
            }
        }
        _ = Glibc.close(connectionRead)
        _ = Glibc.close(connectionWrite)
        return readsReplies ? await replies.all() : []
    }
}

/// Replies read by the harness, and waiters for a number of them.
final class ReplyCollector: Sendable {
    private struct State {
        var replies: [Reply] = []
        var styles: Set<FramingStyle> = []
        var ended = false
        var waiters: [(count: Int, continuation: CheckedContinuation<[Reply], Never>)] = []
    }

    private let state = Mutex(State())

    var styles: Set<FramingStyle> { state.withLock { $0.styles } }

    /// Waits until at least `count` replies arrived (or output ended) and returns all received so far.
    func wait(for count: Int) async -> [Reply] {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [Reply]? in
                if state.replies.count >= count || state.ended { return state.replies }
                state.waiters.append((count, continuation))
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// The reply number `index` (0-based), once it arrived.
    func reply(_ index: Int) async -> Reply? {
        let replies = await wait(for: index + 1)
        return index < replies.count ? replies[index] : nil
    }

    func all() async -> [Reply] { await wait(for: .max) }

    fileprivate func read(from fd: Int32) {
        var parser = FrameParser()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer { buffer.deallocate() }
        while true {
            let n = POSIXIO.readSome(fd, into: buffer)
            let events = n > 0 ? parser.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) : parser.finish()
            for event in events {
                guard case .message(let bytes, let style) = event else {
                    Issue.record("the connection wrote something that is not a frame: \(event)")
                    continue
                }
                deliver(Reply(json: Data(bytes)), style: style)
            }
            if n <= 0 { break }
        }
        _ = Glibc.close(fd)
        let waiters = state.withLock { state in
            state.ended = true
            defer { state.waiters = [] }
            return state.waiters.map { ($0.continuation, state.replies) }
        }
        for (continuation, replies) in waiters { continuation.resume(returning: replies) }
    }

    private func deliver(_ value: Reply, style: FramingStyle) {
        let ready = state.withLock { state -> [(CheckedContinuation<[Reply], Never>, [Reply])] in
            state.replies.append(value)
            state.styles.insert(style)
            let count = state.replies.count
            let due = state.waiters.filter { $0.count <= count }
            state.waiters.removeAll { $0.count <= count }
            return due.map { ($0.continuation, state.replies) }
        }
        for (continuation, replies) in ready { continuation.resume(returning: replies) }
    }
}

/// One frame the connection wrote, decoded on demand (decoding into `JSONValue` is slow, so the
/// envelope fields come from a typed decode).
struct Reply: Sendable, Equatable {
    let json: Data

    enum Scalar: Decodable, Equatable {
        case int(Int64), string(String), other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let n = try? container.decode(Int64.self) { self = .int(n) }
            else if let s = try? container.decode(String.self) { self = .string(s) }
            else { self = .other }
        }
    }

    private struct Envelope: Decodable {
        let id: RequestID?
        let error: ResponseError?
        let result: Scalar?
    }

    private var envelope: Envelope? { try? JSONDecoder().decode(Envelope.self, from: json) }

    var id: RequestID? { envelope?.id }
    var errorCode: Int? { envelope?.error?.code }
    var errorMessage: String? { envelope?.error?.message }
    /// `result` when it is an integer or a string.
    var result: Scalar? { envelope?.result }
    var value: JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: json) }
    subscript(key: String) -> JSONValue? { value?[key] }
    /// The elements of a batch reply.
    var elements: [JSONValue] { if case .array(let elements) = value { return elements }; return [] }
}

extension JSONValue {
    var id: RequestID? { self["id"].flatMap(RequestID.init) }
    var errorCode: Int64? { self["error"]?["code"]?.intValue }
    var errorMessage: String? { self["error"]?["message"]?.stringValue }
}
