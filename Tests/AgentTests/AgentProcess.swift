import Foundation
import JSONRPC
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
import WireFormats
#endif

/// The real `smartcar-auth-agent` binary, spawned over pipes, as a client would run it.
/// Replies are read on a thread of their own and matched to requests by id.
final class AgentProcess: Sendable {
    enum Failure: Error, CustomStringConvertible {
        case timedOut(String)
        var description: String { if case .timedOut(let what) = self { return "timed out waiting for \(what)" }; return "" }
    }

    private struct Inbox {
        var byID: [RequestID: [JSONValue]] = [:]
        var batches: [[JSONValue]] = []
        var notifications: [JSONValue] = []
        var all: [JSONValue] = []
        var waiters: [(id: Int, matches: @Sendable (Inbox) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []
        var nextWaiter = 0
        var ended = false
        /// Output that is not a well-formed protocol message (a test asserts there is none).
        var violations: [String] = []
    }

    let process: Process
    private let input: FileHandle
    private let inbox = Mutex(Inbox())
    private let stderrLog: URL
    let rawOutput = Mutex<[UInt8]>([])

    static var binary: URL {
        productsDirectory.appendingPathComponent("smartcar-auth-agent")
    }

    static var productsDirectory: URL {
        let bundle = Bundle.main.bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    /// Starts the agent. The environment holds only what is given (plus PATH), so the developer's own
    /// Smartcar variables never leak into a test.
    /// With `umask`, the agent is started through `/bin/sh -c 'umask U; exec agent …'`.
    init(arguments: [String] = [], environment: [String: String] = [:], umask: String? = nil, binary: URL = AgentProcess.binary) throws {
        process = Process()
        if let umask {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "umask \(umask); exec \"$0\" \"$@\"", binary.path] + arguments
        } else {
            process.executableURL = binary
            process.arguments = arguments
        }
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "no_proxy": "127.0.0.1,localhost"]
        env.merge(environment) { _, new in new }
        process.environment = env
        let stdinPipe = Pipe(), stdoutPipe = Pipe()
        stderrLog = FileManager.default.temporaryDirectory.appendingPathComponent("agent-stderr-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: stderrLog.path, contents: nil)
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = try FileHandle(forWritingTo: stderrLog)
        try process.run()
        input = stdinPipe.fileHandleForWriting
        let outputFD = stdoutPipe.fileHandleForReading.fileDescriptor
        let thread = Thread { [self] in self.readLoop(fd: outputFD) }
        thread.start()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: stderrLog)
    }

    var pid: Int32 { process.processIdentifier }

    /// Everything the agent wrote to stderr so far.
    var stderr: String { (try? String(contentsOf: stderrLog, encoding: .utf8)) ?? "" }

    // MARK: Sending

    func sendRaw(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(input.fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }

    func sendLine(_ text: String) { sendRaw(Array((text + "\n").utf8)) }

    /// Sends a request as one NDJSON line.
    func send(id: Int, _ method: String, _ params: JSONValue? = nil) {
        sendLine(Self.request(id: id, method, params))
    }

    static func request(id: Int, _ method: String, _ params: JSONValue? = nil) -> String {
        var message: [String: JSONValue] = ["jsonrpc": "2.0", "id": .int(Int64(id)), "method": .string(method)]
        if let params { message["params"] = params }
        return encode(.object(message))
    }

    static func encode(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    /// Sends a request and waits for its response.
    func call(id: Int, _ method: String, _ params: JSONValue? = nil, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        send(id: id, method, params)
        return try await response(id: .number(Int64(id)), timeout: timeout)
    }

    func closeInput() { try? input.close() }

    // MARK: Receiving

    func response(id: RequestID, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        try await waitFor("the response to id \(id)", timeout: timeout) { $0.byID[id]?.first != nil }
        return inbox.withLock { $0.byID[id]!.first! }
    }

    /// All responses received for `id` (a test that checks "exactly once" reads the count).
    func responses(id: RequestID) -> [JSONValue] { inbox.withLock { $0.byID[id] ?? [] } }

    var allMessages: [JSONValue] { inbox.withLock { $0.all } }
    /// Anything on stdout that was not a well-formed protocol message.
    var protocolViolations: [String] { inbox.withLock { $0.violations } }
    var batches: [[JSONValue]] { inbox.withLock { $0.batches } }
    var notifications: [JSONValue] { inbox.withLock { $0.notifications } }

    func waitForBatch(timeout: Duration = .seconds(30)) async throws -> [JSONValue] {
        try await waitFor("a batch reply", timeout: timeout) { !$0.batches.isEmpty }
        return inbox.withLock { $0.batches.first! }
    }

    func waitForResponses(count: Int, timeout: Duration = .seconds(60)) async throws {
        try await waitFor("\(count) responses", timeout: timeout) { inbox in inbox.byID.values.reduce(0) { $0 + $1.count } >= count }
    }

    func waitForNotification(_ method: String, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        try await waitFor("a \(method) notification", timeout: timeout) { $0.notifications.contains { $0["method"]?.stringValue == method } }
        return inbox.withLock { $0.notifications.first { $0["method"]?.stringValue == method }! }
    }

    /// Waits for the agent to exit and returns its exit status.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw Failure.timedOut("the agent to exit") }
            try await Task.sleep(for: .milliseconds(5))  // polling the OS, not synchronising with the agent
        }
        // Everything the agent wrote before exiting is read before the caller looks at it.
        try await waitFor("the end of the agent's output", timeout: timeout) { $0.ended }
        return process.terminationStatus
    }

    /// Waits until `ready` holds for the inbox, or fails after `timeout` (a deadline, not a sleep: it
    /// returns the moment the message arrives).
    private func waitFor(_ what: String, timeout: Duration, _ ready: @escaping @Sendable (Inbox) -> Bool) async throws {
        let token = inbox.withLock { inbox -> Int? in
            if ready(inbox) { return nil }
            inbox.nextWaiter += 1
            return inbox.nextWaiter
        }
        guard let token else { return }
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.resumeWaiter(token)
        }
        await withCheckedContinuation { continuation in
            let resumeNow = inbox.withLock { inbox -> Bool in
                if ready(inbox) || inbox.ended { return true }
                inbox.waiters.append((token, ready, continuation))
                return false
            }
            if resumeNow { continuation.resume() }
        }
        timer.cancel()
        guard inbox.withLock({ ready($0) }) else {
            throw Failure.timedOut("\(what); stderr:\n\(stderr.suffix(4000))")
        }
    }

    private func resumeWaiter(_ token: Int) {
        let waiter = inbox.withLock { inbox -> CheckedContinuation<Void, Never>? in
            guard let index = inbox.waiters.firstIndex(where: { $0.id == token }) else { return nil }
            return inbox.waiters.remove(at: index).continuation
        }
        waiter?.resume()
    }

    private func readLoop(fd: Int32) {
        var parser = FrameParser(maxBodyBytes: 64 << 20)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            let chunk = buffer[0..<n]
            rawOutput.withLock { $0.append(contentsOf: chunk) }
            deliver(parser.feed(chunk))
        }
        deliver(parser.finish())
        let waiters = inbox.withLock { inbox in
            inbox.ended = true
            defer { inbox.waiters.removeAll() }
            return inbox.waiters.map(\.continuation)
        }
        waiters.forEach { $0.resume() }
    }

    private func deliver(_ events: [FrameEvent]) {
        for event in events {
            guard case .message(let body, _) = event else {
                inbox.withLock { $0.violations.append("malformed frame: \(event)") }
                continue
            }
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)) else {
                inbox.withLock { $0.violations.append("invalid JSON: \(String(decoding: body, as: UTF8.self))") }
                continue
            }
            let ready = inbox.withLock { inbox -> [CheckedContinuation<Void, Never>] in
                inbox.all.append(value)
                switch value {
                case .array(let elements):
                    inbox.batches.append(elements)
                case .object(let members) where members["method"] != nil && members["id"] == nil:
                    inbox.notifications.append(value)
                case .object(let members):
                    if let id = members["id"].flatMap(RequestID.init) { inbox.byID[id, default: []].append(value) }
                default:
                    break
                }
                let snapshot = inbox
                let (done, waiting) = snapshot.waiters.split { $0.matches(snapshot) }
                inbox.waiters = waiting
                return done.map(\.continuation)
            }
            ready.forEach { $0.resume() }
        }
    }
}

extension Array {
    /// The elements that satisfy `predicate`, and the others, in order.
    func split(_ predicate: (Element) -> Bool) -> ([Element], [Element]) {
        var yes: [Element] = [], no: [Element] = []
        for element in self { if predicate(element) { yes.append(element) } else { no.append(element) } }
        return (yes, no)
    }
}

extension JSONValue {
    /// `error.code` of a response, if it is an error.
    var errorCode: Int64? { self["error"]?["code"]?.intValue }
    /// `error.data.kind` of a response, if it is an error.
    var errorKind: String? { self["error"]?["data"]?["kind"]?.stringValue }
}
