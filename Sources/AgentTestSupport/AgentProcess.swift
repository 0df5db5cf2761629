import AgentSupport
import Dispatch
import Foundation
import Synchronization
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

#if canImport(Glibc)
    private let systemKill = Glibc.kill
#elseif canImport(Darwin)
    private let systemKill = Darwin.kill
#endif

/// The agent binary (or another program on the same pipes), spawned with `posix_spawn` as a client runs it.
/// Its stdout is cut into messages by a thread of its own (unless the caller reads it itself), a second
/// thread notes its exit, and every wait has a deadline: it returns the moment what it waits for arrives.
/// Stderr goes to a private file that goes away with this value (or to a file the caller names).
package final class AgentProcess: Sendable {
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
        package init(_ description: String) { self.description = description }
    }

    /// How the process ended.
    package struct Termination: Sendable, Equatable {
        /// The exit code, or the number of the signal that ended it.
        package let status: Int32
        package let signalled: Bool
    }

    /// Everything the process wrote to stdout, cut into messages by the reading thread.
    package struct Inbox: Sendable {
        /// Every message in arrival order (notifications too; a batch reply is one message).
        package var messages: [JSONValue] = []
        /// The framing each of `messages` came in, same order.
        package var framings: [MessageReader.Framing] = []
        /// Responses by id, batch elements included, so "answered exactly once" is a count.
        package var byID: [JSONValue: [JSONValue]] = [:]
        package var responseCount = 0
        package var batches: [[JSONValue]] = []
        package var notifications: [JSONValue] = []
        /// Output that is not a well-formed protocol message.
        package var violations: [String] = []
        /// Stdout reached its end (from the start when the caller reads stdout itself).
        package var ended = false
        /// How the process ended, once it has.
        package var termination: Termination?

        /// Nothing more can arrive.
        var finished: Bool { ended && termination != nil }

        package func count(_ id: JSONValue) -> Int { byID[id]?.count ?? 0 }
        package func first(_ id: JSONValue) -> JSONValue? { byID[id]?.first }
    }

    package let pid: pid_t
    /// Where stderr goes.
    package let stderrPath: String
    /// Our end of the process's stdout, when the caller reads it (`readsOutput: false`) with a `MessageReader`.
    package let outputFD: Int32
    private let input: Atomic<Int32>
    private let readsOutput: Bool
    private let shared: Shared
    /// The private folder holding the stderr file, when no path was given.
    private let stderrFolder: TemporaryFolder?
    /// The agent's `XDG_STATE_HOME` unless the caller gives one: an agent started without `--store` keeps its
    /// default store here, never in the home of whoever runs the tests.
    private let stateFolder: TemporaryFolder

    /// Starts `binary` with `arguments` and an environment holding only `environment` plus PATH, no_proxy and a
    /// private XDG_STATE_HOME, so the developer's own Smartcar variables and default store never leak in. With `umask`, through
    /// `/bin/sh -c 'umask U; exec binary …'`. With `readsOutput` false nothing reads stdout: the caller does,
    /// from `outputFD`. `keepRawOutput` keeps every byte of stdout (see `rawOutput`).
    package init(
        binary: String = BinaryLocator.agent, arguments: [String] = [], environment: [String: String] = [:],
        umask: String? = nil, stderrPath: String? = nil, readsOutput: Bool = true,
        keepRawOutput: Bool = false
    ) throws {
        var env = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "no_proxy": "127.0.0.1,localhost",
        ]
        stateFolder = try TemporaryFolder("agent-state")
        env["XDG_STATE_HOME"] = stateFolder.path
        env.merge(environment) { _, new in new }
        var executable = binary, argv = arguments
        if let umask {
            executable = "/bin/sh"
            argv = ["-c", "umask \(umask); exec \"$0\" \"$@\"", binary] + arguments
        }
        if let stderrPath {
            self.stderrPath = stderrPath
            stderrFolder = nil
        } else {
            let folder = try TemporaryFolder("agent-stderr")
            self.stderrPath = folder.file("stderr")
            stderrFolder = folder
        }
        let spawned = try Self.spawn(executable, argv, env, stderr: self.stderrPath)
        pid = spawned.pid
        input = Atomic(spawned.input)
        outputFD = spawned.output
        self.readsOutput = readsOutput
        let shared = Shared(keepsRaw: keepRawOutput)
        self.shared = shared
        if !readsOutput {
            shared.update { $0.inbox.ended = true }
        } else {
            let output = spawned.output
            let reader = Thread { shared.read(output) }
            reader.name = "agent \(spawned.pid) stdout"
            reader.start()
        }
        let pid = spawned.pid
        let reaper = Thread { shared.reap(pid) }
        reaper.name = "agent \(spawned.pid) exit"
        reaper.start()
    }

    deinit {
        if termination == nil { _ = systemKill(pid, SIGKILL) }
        closeInput()
        if !readsOutput { close(outputFD) }
    }

    // MARK: Input

    /// Writes all of `bytes` to stdin (blocking while the pipe is full); false once the process stopped
    /// reading or the input was closed. Not to be called while another thread closes the input.
    @discardableResult
    package func send(_ bytes: [UInt8]) -> Bool {
        let fd = input.load(ordering: .acquiring)
        return fd >= 0 && FileDescriptor.writeAll(fd, bytes)
    }

    @discardableResult
    package func sendLine(_ text: String) -> Bool { send(Array((text + "\n").utf8)) }

    /// Sends a request as one NDJSON line.
    @discardableResult
    package func send(id: JSONValue, _ method: String, _ params: JSONValue? = nil) -> Bool {
        sendLine(Requests.request(id: id, method, params))
    }

    @discardableResult
    package func send(id: Int, _ method: String, _ params: JSONValue? = nil) -> Bool {
        send(id: .int(Int64(id)), method, params)
    }

    /// Our end of stdin, for a writer on a thread of its own (-1 once closed).
    package var inputFD: Int32 { input.load(ordering: .acquiring) }

    /// Closes stdin: end of input, after which the agent finishes its work and exits.
    package func closeInput() {
        let fd = input.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { close(fd) }
    }

    // MARK: Process

    package func kill(_ signal: Int32 = SIGKILL) {
        if termination == nil { _ = systemKill(pid, signal) }
    }

    /// How the process ended; nil while it runs.
    package var termination: Termination? { shared.state.withLock { $0.inbox.termination } }
    package var isRunning: Bool { termination == nil }

    /// Resident memory in KiB from /proc (nil once the process is gone).
    package var residentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    /// Everything written to stderr so far.
    package var stderrBytes: [UInt8] { FileManager.default.contents(atPath: stderrPath).map { [UInt8]($0) } ?? [] }
    package var stderr: String { String(decoding: stderrBytes, as: UTF8.self) }

    /// The last `lines` lines of stderr, for failure reports.
    package func stderrTail(lines: Int = 25) -> String {
        stderr.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Every byte written to stdout (only with `keepRawOutput`).
    package var rawOutput: [UInt8] { shared.state.withLock { $0.raw } }

    // MARK: Waiting, blocking

    /// What stdout held so far.
    package var inbox: Inbox { shared.state.withLock { $0.inbox } }

    /// Calls `body` with the inbox until it returns a value; nil once `deadline` passes or nothing more can
    /// arrive with `body` still answering nil. Blocks the calling thread.
    package func wait<T>(until deadline: ContinuousClock.Instant, _ body: (Inbox) -> T?) -> T? {
        let wakeUp = DispatchSemaphore(value: 0)
        while true {
            let (result, token) = shared.state.withLock { state -> (T?, Int?) in
                if let result = body(state.inbox) { return (result, nil) }
                if state.inbox.finished { return (nil, nil) }
                return (nil, state.watch(Watcher(ready: { _ in true }, wake: { wakeUp.signal() })))
            }
            if let result { return result }
            guard let token else { return nil }
            let left = deadline - .now
            if left <= .zero || wakeUp.wait(timeout: .now() + .nanoseconds(Self.nanoseconds(left))) == .timedOut {
                shared.cancel(token)
                return shared.state.withLock { body($0.inbox) }
            }
        }
    }

    /// Waits until `ready` holds (true), or the deadline passes or nothing more can arrive (false).
    package func waitUntil(_ deadline: ContinuousClock.Instant, _ ready: (Inbox) -> Bool) -> Bool {
        wait(until: deadline) { ready($0) ? true : nil } ?? false
    }

    /// Sends a request and waits for its response, blocking (nil after `timeout`).
    package func call(
        _ id: JSONValue, _ method: String, _ params: JSONValue? = nil,
        timeout: Duration = .seconds(60)
    ) -> JSONValue? {
        send(id: id, method, params)
        return response(id, timeout: timeout)
    }

    /// Waits for the first response to `id`, blocking (nil after `timeout`).
    package func response(_ id: JSONValue, timeout: Duration = .seconds(60)) -> JSONValue? {
        wait(until: .now + timeout) { $0.first(id) }
    }

    /// Waits for the process to exit and its output to be read; nil when the deadline passes first.
    package func waitForExit(until deadline: ContinuousClock.Instant) -> Termination? {
        wait(until: deadline) { $0.finished ? $0.termination : nil }
    }

    // MARK: Waiting, async

    /// Waits until `ready` holds for the inbox, or throws after `timeout` (with the end of stderr).
    package func waitFor(
        _ what: String, timeout: Duration = .seconds(30),
        _ ready: @escaping @Sendable (Inbox) -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        let token = shared.state.withLock { $0.newToken() }
        let shared = self.shared
        let timer = Task {
            guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
            shared.cancel(token, waking: true)
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = shared.state.withLock { state -> Bool in
                if ready(state.inbox) || state.inbox.finished || ContinuousClock.now >= deadline { return true }
                state.watchers[token] = Watcher(ready: ready, wake: { continuation.resume() })
                return false
            }
            if now { continuation.resume() }
        }
        timer.cancel()
        guard shared.state.withLock({ ready($0.inbox) }) else {
            throw Failure("timed out waiting for \(what); stderr:\n\(stderr.suffix(4000))")
        }
    }

    /// Sends a request and waits for its response.
    package func call(
        id: Int, _ method: String, _ params: JSONValue? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> JSONValue {
        send(id: .int(Int64(id)), method, params)
        return try await response(id: .int(Int64(id)), timeout: timeout)
    }

    package func response(id: JSONValue, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        try await waitFor("the response to id \(id)", timeout: timeout) { $0.first(id) != nil }
        return inbox.first(id)!
    }

    /// Every response to `id` so far (a test that checks "exactly once" reads the count).
    package func responses(id: JSONValue) -> [JSONValue] { inbox.byID[id] ?? [] }

    package func responses(id: Int) -> [JSONValue] { responses(id: .int(Int64(id))) }

    package func waitForBatch(timeout: Duration = .seconds(30)) async throws -> [JSONValue] {
        try await waitFor("a batch reply", timeout: timeout) { !$0.batches.isEmpty }
        return inbox.batches[0]
    }

    package func waitForResponses(count: Int, timeout: Duration = .seconds(60)) async throws {
        try await waitFor("\(count) responses", timeout: timeout) { $0.responseCount >= count }
    }

    package func waitForNotification(_ method: String, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        let named: @Sendable (JSONValue) -> Bool = { $0["method"]?.stringValue == method }
        try await waitFor("a \(method) notification", timeout: timeout) { $0.notifications.contains(where: named) }
        return inbox.notifications.first(where: named)!
    }

    /// Waits for the process to exit and its output to be read; its exit code (or the signal that ended it).
    package func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        try await waitFor("the agent to exit", timeout: timeout) { $0.finished }
        return termination!.status
    }

    // MARK: Internals

    private static func nanoseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(clamping: seconds) &* 1_000_000_000 &+ Int(attoseconds / 1_000_000_000)
    }

    /// Someone waiting: woken once `ready` holds or nothing more can arrive.
    fileprivate struct Watcher: Sendable {
        let ready: @Sendable (Inbox) -> Bool
        let wake: @Sendable () -> Void
    }

    fileprivate struct State: Sendable {
        var inbox = Inbox()
        var raw: [UInt8] = []
        var watchers: [Int: Watcher] = [:]
        var lastToken = 0

        mutating func newToken() -> Int {
            lastToken += 1
            return lastToken
        }

        mutating func watch(_ watcher: Watcher) -> Int {
            let token = newToken()
            watchers[token] = watcher
            return token
        }
    }

    /// What the process's two threads and its waiters share (never `self`, so the process can go away first).
    private final class Shared: Sendable {
        let state = Mutex(State())
        let keepsRaw: Bool

        init(keepsRaw: Bool) { self.keepsRaw = keepsRaw }

        /// Changes the state and wakes the waiters whose condition now holds.
        func update(_ change: (inout State) -> Void) {
            let woken = state.withLock { state -> [Watcher] in
                change(&state)
                let inbox = state.inbox
                let due = state.watchers.filter { inbox.finished || $0.value.ready(inbox) }
                for token in due.keys { state.watchers[token] = nil }
                return Array(due.values)
            }
            woken.forEach { $0.wake() }
        }

        func cancel(_ token: Int, waking: Bool = false) {
            let watcher = state.withLock { $0.watchers.removeValue(forKey: token) }
            if waking { watcher?.wake() }
        }

        /// The reading thread: stdout to its end, then closes it.
        func read(_ fd: Int32) {
            let reader = MessageReader(fd: fd)
            while let piece = reader.next() {
                switch piece {
                case .message(let body, let framing):
                    let bytes = [UInt8](body)
                    let value = try? JSONParser.parse(bytes: bytes)
                    update { state in
                        if keepsRaw { state.raw.append(contentsOf: Self.raw(bytes, framing)) }
                        guard let value else {
                            let text = String(decoding: bytes.prefix(300), as: UTF8.self)
                            state.inbox.violations.append("not JSON: \(text)")
                            return
                        }
                        state.inbox.file(value, framing)
                    }
                case .junk(let text):
                    update { $0.inbox.violations.append(text) }
                }
            }
            close(fd)
            update { $0.inbox.ended = true }
        }

        /// The bytes a message came in (the reader drops the framing).
        private static func raw(_ body: [UInt8], _ framing: MessageReader.Framing) -> [UInt8] {
            switch framing {
            case .line: body + [0x0A]
            case .contentLength: Array("Content-Length: \(body.count)\r\n\r\n".utf8) + body
            }
        }

        /// The exit thread: waits for the process to end.
        func reap(_ pid: pid_t) {
            var status: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &status, 0) } while result < 0 && errno == EINTR
            // WIFEXITED / WEXITSTATUS are macros Swift does not import.
            let signal = status & 0x7f
            let termination =
                result == pid
                ? Termination(status: signal == 0 ? (status >> 8) & 0xff : signal, signalled: signal != 0)
                : Termination(status: -1, signalled: false)
            update { $0.inbox.termination = termination }
        }
    }

    /// Spawns with two pipes and stderr to `stderr` (appending, created 0600). The child starts with the
    /// default SIGPIPE disposition and an empty signal mask whatever this process uses, and holds no other
    /// descriptor of this process (tests spawn from many threads at once; an inherited pipe end would keep
    /// another process's input open).
    private static func spawn(
        _ executable: String, _ arguments: [String], _ environment: [String: String],
        stderr: String
    ) throws -> (pid: pid_t, input: Int32, output: Int32) {
        ignoreSIGPIPE
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        guard pipe(&toChild) == 0 else { throw Failure("pipe failed: \(String(cString: strerror(errno)))") }
        guard pipe(&fromChild) == 0 else {
            toChild.forEach { close($0) }
            throw Failure("pipe failed: \(String(cString: strerror(errno)))")
        }
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t(), empty = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        #if canImport(Darwin)
            flags |= Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)
        #else
            // Descriptors another thread opened without close-on-exec (Foundation's pipes do) are closed in the
            // child; glibc ignores a close of one that has gone meanwhile.
            for fd in openDescriptors() where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        #endif
        posix_spawnattr_setflags(&attributes, Int16(flags))

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
        return (pid, toChild[1], fromChild[0])
    }

    /// A vanished agent must give EPIPE on write, not kill the client.
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    #if !canImport(Darwin)
        /// This process's open descriptors, from /proc/self/fd.
        private static func openDescriptors() -> [Int32] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
        }
    #endif
}

extension AgentProcess.Inbox {
    /// Files one message: batch elements and responses by id, notifications apart.
    fileprivate mutating func file(_ value: JSONValue, _ framing: MessageReader.Framing) {
        messages.append(value)
        framings.append(framing)
        switch value {
        case .array(let elements):
            batches.append(elements)
            elements.forEach { fileResponse($0) }
        case .object(let members) where members["id"] == nil && members["method"] != nil:
            notifications.append(value)
        default:
            fileResponse(value)
        }
    }

    private mutating func fileResponse(_ response: JSONValue) {
        guard case .object(let members) = response, let id = members["id"],
            members["result"] != nil || members["error"] != nil
        else {
            violations.append("not a response: \(response.compactText.prefix(300))")
            return
        }
        byID[id, default: []].append(response)
        responseCount += 1
    }
}
