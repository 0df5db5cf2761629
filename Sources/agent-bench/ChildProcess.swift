#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A process spawned with `posix_spawn` behind two pipes, read and written with raw `read`/`write` so the
/// client costs as little as possible. Its stderr goes to a file (or /dev/null). Not thread-safe: one owner.
final class ChildProcess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    let name: String
    let pid: pid_t
    /// Our end of its stdin; -1 once closed.
    private(set) var input: Int32
    /// Our end of its stdout, wrapped for line reading.
    let output: LineReader
    let stderrPath: String?
    private var exitStatus: Int32?

    /// Spawns `executable` (a path; `arguments` exclude argv[0]) with exactly `environment`.
    init(name: String, executable: String, arguments: [String], environment: [String: String], stderrPath: String? = nil) throws {
        self.name = name
        self.stderrPath = stderrPath
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else {
            throw Failure("pipe failed: \(String(cString: strerror(errno)))")
        }
        // Only the ends dup'ed onto the child's 0 and 1 survive the exec (pipe2 is not exported to Swift;
        // only this thread spawns, so no other child can inherit them in between).
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        // The bench ignores SIGPIPE; the child starts with the default disposition and an empty mask.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t(), empty = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(toChild[0])
        close(fromChild[1])
        guard spawned == 0 else {
            close(toChild[1])
            close(fromChild[0])
            throw Failure("could not start \(executable): \(String(cString: strerror(spawned)))")
        }
        self.pid = pid
        input = toChild[1]
        output = LineReader(fd: fromChild[0])
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            _ = reap(blocking: true)
        }
        if input >= 0 { close(input) }
        close(output.fd)
    }

    /// Writes all of `bytes` to its stdin.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try ChildProcess.writeAll(input, bytes, to: name)
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    func writeLine(_ line: String) throws { try write(Array((line + "\n").utf8)) }

    /// One request line, one reply line.
    func call(_ line: String) throws -> String {
        try writeLine(line)
        guard let reply = output.nextLineString() else { throw Failure("\(name) closed its output\(stderrTail)") }
        return reply
    }

    /// Closes its stdin (end of input: the agent and the peer finish and exit).
    func closeInput() {
        if input >= 0 { close(input) }
        input = -1
    }

    /// Closes stdin and waits up to `timeout` seconds for the exit, then kills it. Answers the exit status.
    @discardableResult
    func finish(timeout: Double = 10) -> Int32 {
        closeInput()
        let deadline = Monotonic.now() + UInt64(timeout * 1e9)
        while exitStatus == nil && Monotonic.now() < deadline {
            if reap(blocking: false) { break }
            usleep(1_000)
        }
        if exitStatus == nil {
            kill(pid, SIGKILL)
            _ = reap(blocking: true)
        }
        return exitStatus ?? -1
    }

    /// Resident memory (VmRSS) in KiB, from /proc.
    func residentKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// The last lines of its stderr, for error messages.
    var stderrTail: String {
        guard let stderrPath, let text = try? String(contentsOfFile: stderrPath, encoding: .utf8), !text.isEmpty else { return "" }
        return "; its stderr ends with:\n" + text.split(separator: "\n").suffix(5).joined(separator: "\n")
    }

    private func reap(blocking: Bool) -> Bool {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if result == pid {
                // WIFEXITED / WEXITSTATUS are macros Swift does not import.
                exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                return true
            }
            if result < 0 && errno == EINTR { continue }
            if result < 0 { exitStatus = -1; return true }
            return false
        }
    }

    /// A `write(2)` loop over short writes and EINTR; usable from any thread (it touches only `fd`).
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, to name: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                throw Failure("writing to \(name) failed: \(String(cString: strerror(errno)))")
            }
        }
    }
}
