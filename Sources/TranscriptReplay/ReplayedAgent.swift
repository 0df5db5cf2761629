import AgentTestSupport
import Dispatch
import WireFormats

/// One agent of a transcript: its process, and what it wrote as the transcript's order-keeping JSON, with
/// which messages a step has taken. Used from the runner's one thread.
final class ReplayedAgent {
    /// One message the agent wrote.
    struct Received {
        var value: JSONValue
        var framing: Transcript.Framing
        /// Taken by an `expect` step; whatever is left at the end was not expected.
        var consumed = false
    }

    struct State {
        var messages: [Received] = []
        /// Output that was not a well-formed message.
        var junk: [String] = []
        /// Stdout reached its end.
        var ended = false
        /// The exit status, once the process is gone (`signalled` when a signal ended it).
        var exit: (status: Int32, signalled: Bool)?
    }

    let name: String
    private let process: AgentProcess
    private var state = State()
    /// How many of the process's messages and violations `state` holds.
    private var messagesSeen = 0
    private var violationsSeen = 0

    init(name: String, binary: String, arguments: [String], environment: [String: String]) throws {
        self.name = name
        process = try AgentProcess(binary: binary, arguments: arguments, environment: environment)
    }

    /// Writes all of `bytes` to the agent's stdin; false if the pipe is closed (the agent exited).
    func write(_ bytes: [UInt8]) -> Bool { process.send(bytes) }

    func closeInput() { process.closeInput() }

    func kill(_ signal: Int32) { process.kill(signal) }

    /// Calls `body` with the state until it returns a value, the output has ended and the process exited with
    /// `body` still returning nil, or `deadline` passes (then nil).
    func wait<T>(until deadline: DispatchTime, _ body: (inout State) -> T?) -> T? {
        process.wait(until: Self.instant(deadline)) { inbox in
            catchUp(inbox)
            return body(&state)
        }
    }

    /// The state as it is now.
    var snapshot: State {
        catchUp(process.inbox)
        return state
    }

    /// Waits for the process to exit and its output to end.
    func waitForExit(until deadline: DispatchTime) -> (status: Int32, signalled: Bool)? {
        process.waitForExit(until: Self.instant(deadline)).map { ($0.status, $0.signalled) }
    }

    /// The last lines the agent wrote to stderr, for failure reports.
    func stderrTail(lines: Int = 25) -> String { process.stderrTail(lines: lines) }

    /// Takes in what arrived since the last look.
    private func catchUp(_ inbox: AgentProcess.Inbox) {
        for index in messagesSeen..<inbox.messages.count {
            let framing: Transcript.Framing = inbox.framings[index] == .line ? .line : .contentLength
            state.messages.append(Received(value: inbox.messages[index], framing: framing))
        }
        messagesSeen = inbox.messages.count
        state.junk += inbox.violations[violationsSeen...]
        violationsSeen = inbox.violations.count
        state.ended = inbox.ended
        state.exit = inbox.termination.map { ($0.status, $0.signalled) }
    }

    private static func instant(_ deadline: DispatchTime) -> ContinuousClock.Instant {
        let now = DispatchTime.now().uptimeNanoseconds
        let left = deadline.uptimeNanoseconds > now ? deadline.uptimeNanoseconds - now : 0
        return .now + .nanoseconds(Int64(clamping: left))
    }
}
