#if canImport(Glibc)
import Glibc
#endif
import Foundation
import JSONRPC
import Synchronization
import WireFormats

/// The real `smartcar-auth-agent` binary, spawned over pipes as a client would run it. Stdout is read on a
/// thread of its own into an `Inbox`; stderr goes to a file so logs can be scanned after the fact.
final class AgentProcess: Sendable {
    struct Failure: Error, CustomStringConvertible { let description: String }

    let process: Process
    let inbox = Inbox()
    let stderrPath: String
    private let input: FileHandle
    private let keepsRawOutput: Bool
    private let raw = Mutex<[UInt8]>([])

    /// Starts `binary` with `arguments` and an environment holding only `environment` plus PATH and
    /// no_proxy (so the developer's own Smartcar variables never leak in).
    init(binary: String, arguments: [String], environment: [String: String], keepRawOutput: Bool = false) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "no_proxy": "127.0.0.1,localhost"]
        env.merge(environment) { _, new in new }
        process.environment = env
        keepsRawOutput = keepRawOutput
        stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("agent-reliability-\(UUID().uuidString).stderr").path
        guard FileManager.default.createFile(atPath: stderrPath, contents: nil), let errorFile = FileHandle(forWritingAtPath: stderrPath) else {
            throw Failure(description: "cannot create \(stderrPath)")
        }
        let stdinPipe = Pipe(), stdoutPipe = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = errorFile
        try process.run()
        try? errorFile.close()
        try? stdinPipe.fileHandleForReading.close()
        try? stdoutPipe.fileHandleForWriting.close()
        input = stdinPipe.fileHandleForWriting
        let outputFD = stdoutPipe.fileHandleForReading.fileDescriptor
        let thread = Thread { [self] in readLoop(fd: outputFD, output: stdoutPipe.fileHandleForReading) }
        thread.start()
    }

    deinit {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: stderrPath)
    }

    var pid: Int32 { process.processIdentifier }

    // MARK: Input

    /// Writes all of `bytes` (blocking while the pipe is full); false once the agent stopped reading.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(input.fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return false }
            }
            return true
        }
    }

    @discardableResult
    func sendLine(_ text: String) -> Bool { send(Array((text + "\n").utf8)) }

    /// Sends one request as a line and returns its id.
    @discardableResult
    func request(_ id: JSONValue, _ method: String, _ params: JSONValue? = nil) -> JSONValue {
        sendLine(Self.request(id, method, params))
        return id
    }

    /// Sends a request and waits for its response (nil after `timeout`).
    func call(_ id: JSONValue, _ method: String, _ params: JSONValue? = nil, timeout: Duration = .seconds(60)) -> JSONValue? {
        request(id, method, params)
        return response(id, timeout: timeout)
    }

    func response(_ id: JSONValue, timeout: Duration = .seconds(60)) -> JSONValue? {
        guard inbox.wait(until: .now + timeout, { $0.count(id) > 0 }) else { return nil }
        return inbox.read { $0.first(id) }
    }

    func closeInput() { try? input.close() }

    // MARK: Process

    func kill(_ signal: Int32 = SIGKILL) { _ = Glibc.kill(pid, signal) }

    /// Waits for the agent to exit and its output to be read; its exit status, or nil after `timeout`.
    func waitForExit(timeout: Duration = .seconds(60)) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return nil }
            usleep(1000)  // polling the OS for the child's state, not synchronising with the agent
        }
        guard inbox.wait(until: deadline, { $0.ended }) || inbox.read({ $0.ended }) else { return nil }
        return process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
    }

    /// Resident memory in KiB from /proc (nil once the process is gone).
    var residentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    /// Everything written to stderr so far.
    var stderr: [UInt8] { (FileManager.default.contents(atPath: stderrPath).map { [UInt8]($0) }) ?? [] }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// Copies stderr to a file that outlives this run, for a failure message: its path and last lines.
    func keepStderr() -> String {
        let kept = FileManager.default.temporaryDirectory.appendingPathComponent("agent-reliability-failure-\(pid).stderr").path
        try? FileManager.default.removeItem(atPath: kept)
        try? FileManager.default.copyItem(atPath: stderrPath, toPath: kept)
        let lines = stderrText.split(separator: "\n", omittingEmptySubsequences: false).suffix(12).joined(separator: "\n    ")
        return "\(kept), ending:\n    \(lines)"
    }

    /// Every byte written to stdout (only with `keepRawOutput`).
    var rawOutput: [UInt8] { raw.withLock { $0 } }

    private func readLoop(fd: Int32, output: FileHandle) {
        var framer = OutputFramer()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if keepsRawOutput { raw.withLock { $0.append(contentsOf: buffer[0..<n]) } }
            for piece in framer.feed(buffer[0..<n]) { inbox.deliver(piece) }
        }
        for piece in framer.finish() { inbox.deliver(piece) }
        try? output.close()
        inbox.end()
    }

    // MARK: Messages

    static func request(_ id: JSONValue, _ method: String, _ params: JSONValue? = nil) -> String {
        var message: [String: JSONValue] = ["jsonrpc": "2.0", "id": id, "method": .string(method)]
        if let params { message["params"] = params }
        return text(.object(message))
    }

    static func notification(_ method: String, _ params: JSONValue? = nil) -> String {
        var message: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method)]
        if let params { message["params"] = params }
        return text(.object(message))
    }

    /// Compact JSON text with sorted keys and unescaped slashes.
    static func text(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    /// `Content-Length` framing of `body`.
    static func framed(_ body: String) -> [UInt8] { Array("Content-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8) }
}

extension JSONValue {
    var errorCode: Int64? { self["error"]?["code"]?.intValue }
    var errorKind: String? { self["error"]?["data"]?["kind"]?.stringValue }
    var isSuccess: Bool { self["result"] != nil }
    /// "result" or the error kind (or code) of a response, for counting outcomes.
    var outcome: String {
        if isSuccess { return "result" }
        return errorKind ?? errorCode.map { "error \($0)" } ?? "malformed"
    }
}
