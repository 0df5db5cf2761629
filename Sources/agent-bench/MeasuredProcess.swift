import AgentSupport
import AgentTestSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A process the bench measures: started by `AgentProcess`, its replies read here on the calling thread by
/// a `MessageReader` (no reading thread between the bench's clock and a reply). Its stderr goes to a file
/// (or /dev/null). Not thread-safe: one owner.
final class MeasuredProcess {
    let name: String
    private let process: AgentProcess
    /// Its stdout, for line reading.
    let output: MessageReader
    private let stderrPath: String?

    /// Spawns `executable` (a path; `arguments` exclude argv[0]) with `environment` (plus PATH and no_proxy).
    init(
        name: String, executable: String, arguments: [String], environment: [String: String],
        stderrPath: String? = nil
    ) throws {
        self.name = name
        self.stderrPath = stderrPath
        process = try AgentProcess(
            binary: executable, arguments: arguments, environment: environment,
            stderrPath: stderrPath ?? "/dev/null", readsOutput: false)
        output = MessageReader(fd: process.outputFD, capacity: 4 << 20)
    }

    /// Our end of its stdin (-1 once closed), for a writer on a thread of its own.
    var input: Int32 { process.inputFD }

    /// Writes all of `bytes` to its stdin.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard FileDescriptor.writeAll(process.inputFD, bytes) else {
            throw Clients.Failure(description: "writing to \(name) failed: \(String(cString: strerror(errno)))")
        }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    func writeLine(_ line: String) throws { try write(Array((line + "\n").utf8)) }

    /// One request line, one reply line.
    func call(_ line: String) throws -> String {
        try writeLine(line)
        guard let reply = output.nextLineString() else {
            throw Clients.Failure(description: "\(name) closed its output\(stderrTail)")
        }
        return reply
    }

    /// Closes its stdin (end of input: the agent and the peer finish and exit).
    func closeInput() { process.closeInput() }

    /// Closes stdin and waits up to `timeout` seconds for the exit, then kills it. Answers the exit status
    /// (128 + the signal when a signal ended it).
    @discardableResult
    func finish(timeout: Double = 10) -> Int32 {
        process.closeInput()
        var termination = process.waitForExit(until: .now + .milliseconds(Int64(timeout * 1000)))
        if termination == nil {
            process.kill(SIGKILL)
            termination = process.waitForExit(until: .now + .seconds(10))
        }
        guard let termination else { return -1 }
        return termination.signalled ? 128 + termination.status : termination.status
    }

    /// Resident memory (VmRSS) in KiB, from /proc.
    func residentKiB() -> Int? { process.residentKiB }

    /// User plus system CPU seconds the process has used so far (Linux `/proc`; nil elsewhere).
    func cpuSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.pid)/stat", encoding: .utf8),
            let afterName = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the name: state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: afterName)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The last lines of its stderr, for error messages.
    var stderrTail: String {
        let text = stderrPath == nil ? "" : process.stderrTail(lines: 5)
        return text.isEmpty ? "" : "; its stderr ends with:\n" + text
    }
}
