#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation
import Synchronization
import WireFormats

#if canImport(Glibc)
private let systemWrite = Glibc.write
private let systemKill = Glibc.kill
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
private let systemKill = Darwin.kill
#endif

/// One agent process under test, spawned over pipes. Its stdout is read on a thread of its own and cut
/// into messages; the harness waits on them with deadlines (never by sleeping).
final class AgentDriver: Sendable {
    /// One message the agent wrote.
    struct Received: Sendable {
        var value: JSONValue
        var framing: Transcript.Framing
        /// Taken by an `expect` step; whatever is left at the end was not expected.
        var consumed = false
    }

    struct State: Sendable {
        var messages: [Received] = []
        /// Output that was not a well-formed message.
        var junk: [String] = []
        /// Stdout reached its end.
        var ended = false
        /// The exit status, once the process is gone (`signalled` when a signal ended it).
        var exit: (status: Int32, signalled: Bool)?
    }

    /// What the process, the reading thread and the harness share.
    private final class Shared: Sendable {
        let state = Mutex(State())
        /// Signalled on every change of `state`; only the harness's one thread waits on it.
        let changed = DispatchSemaphore(value: 0)

        func update(_ body: (inout State) -> Void) {
            state.withLock { body(&$0) }
            changed.signal()
        }
    }

    let name: String
    private let process: Process
    private let input: FileHandle
    private let shared = Shared()
    private let stderrPath: String

    init(name: String, binary: String, arguments: [String], environment: [String: String], stderrPath: String) throws {
        self.name = name
        self.stderrPath = stderrPath
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        let stdinPipe = Pipe(), stdoutPipe = Pipe()
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        let shared = self.shared
        process.terminationHandler = { finished in
            let signalled = finished.terminationReason == .uncaughtSignal
            shared.update { $0.exit = (finished.terminationStatus, signalled) }
        }
        try process.run()
        input = stdinPipe.fileHandleForWriting
        let outputFD = stdoutPipe.fileHandleForReading.fileDescriptor
        let reader = Thread { Self.readLoop(fd: outputFD, shared: shared) }
        reader.name = "transcript agent \(name) stdout"
        reader.start()
    }

    deinit { kill(SIGKILL) }

    // MARK: Input

    /// Writes all of `bytes` to the agent's stdin; false if the pipe is closed (the agent exited).
    func write(_ bytes: [UInt8]) -> Bool {
        let fd = input.fileDescriptor
        return bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
        }
    }

    func closeInput() { try? input.close() }

    func kill(_ signal: Int32) {
        if process.isRunning { _ = systemKill(process.processIdentifier, signal) }
    }

    // MARK: Output

    /// Calls `body` with the state, under its lock, until it returns a value, the output has ended with
    /// `body` still returning nil, or `deadline` passes (then nil).
    func wait<T>(until deadline: DispatchTime, _ body: (inout State) -> T?) -> T? {
        while true {
            let (result, ended) = shared.state.withLock { state in (body(&state), state.ended && state.exit != nil) }
            if let result { return result }
            if ended { return nil }
            if shared.changed.wait(timeout: deadline) == .timedOut { return shared.state.withLock { body(&$0) } }
        }
    }

    /// The state as it is now.
    var snapshot: State { shared.state.withLock { $0 } }

    /// Waits for the process to exit and its output to end.
    func waitForExit(until deadline: DispatchTime) -> (status: Int32, signalled: Bool)? {
        wait(until: deadline) { state in state.ended ? state.exit : nil }
    }

    /// The last lines the agent wrote to stderr, for failure reports.
    func stderrTail(lines: Int = 25) -> String {
        let text = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    private static func readLoop(fd: Int32, shared: Shared) {
        var framer = OutputFramer()
        var buffer = [UInt8](repeating: 0, count: 65536)
        func deliver(_ frames: [OutputFramer.Frame]) {
            guard !frames.isEmpty else { return }
            shared.update { state in
                for frame in frames {
                    switch frame {
                    case .message(let body, let framing):
                        if let value = try? JSONParser.parse(bytes: body) {
                            state.messages.append(Received(value: value, framing: framing))
                        } else {
                            state.junk.append("a message that is not JSON: \(String(decoding: body.prefix(300), as: UTF8.self))")
                        }
                    case .junk(let text):
                        state.junk.append(text)
                    }
                }
            }
        }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            deliver(framer.feed(buffer[0..<count]))
        }
        deliver(framer.finish())
        shared.update { $0.ended = true }
    }
}
