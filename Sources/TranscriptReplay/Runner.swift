import AgentTestSupport
import Dispatch
import FakeSmartcar
import Foundation
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Plays one transcript: starts the scripted upstream and the agent, performs the steps in order, then
/// checks that nothing was left over (a message no step expected, an upstream interaction never used).
/// Runs on one thread from start to end; every wait has a deadline.
final class Runner {
    private let transcript: Transcript
    private let options: ReplayOptions
    /// The scenario's private folder (`{dir}`, `{store}`, HOME), made at set-up.
    private var folder: TemporaryFolder!
    private let bindings: Bindings
    private let pool: UpstreamPool
    private var server: ScriptedServer?
    private var agents: [String: ReplayedAgent] = [:]
    /// Agents in the order they were started, for reports.
    private var agentOrder: [String] = []
    /// Requests sent per agent and id (`compactText` of the id): how many answers each id is still owed.
    private var sentIDs: [String: [String: Int]] = [:]
    private var clockRequests = 0
    /// Agents whose exit an `expectExit` step checked; any other must exit 0 when its input closes.
    private var exitChecked: Set<String> = []
    private var storeLock: (any StoreProbe)?
    /// What happened, filled in when the run ends (see `ReplayResult.log`).
    private(set) var log: [String] = []

    init(_ transcript: Transcript, options: ReplayOptions) {
        self.transcript = transcript
        self.options = options
        bindings = Bindings([:])
        pool = UpstreamPool(transcript.interactions, bindings: bindings)
    }

    func run() -> [String] {
        // A vanished agent must give EPIPE on write, not kill the harness.
        signal(SIGPIPE, SIG_IGN)
        defer {
            bindings.recordTokens()
            tearDown()
        }
        do {
            try setUp()
        } catch {
            return ["could not start the scenario: \(error)"]
        }
        var failures: [String] = []
        var failedLine: Int?
        for step in transcript.steps {
            if case .upstream = step.action { continue }
            if let failure = perform(step) {
                failures.append("line \(step.line): \(failure)")
                failedLine = step.line
                break
            }
        }
        failures += finish(failedAt: failedLine)
        for name in agentOrder {
            log += agents[name]!.snapshot.messages.map { "agent \(name) sent: \($0.value.inlineText)" }
        }
        log += pool.requests.map { "upstream received: \($0)" }
        if !failures.isEmpty {
            for name in agentOrder {
                let tail = agents[name]!.stderrTail()
                if !tail.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    failures.append("agent \(name)'s stderr (last lines):\n" + tail)
                }
            }
        }
        return failures
    }

    // MARK: Setting up and finishing

    private func setUp() throws {
        let folder = try TemporaryFolder("transcript")
        self.folder = folder
        if unsealed {
            try TestEvidence.exclude(folder, because: Self.unsealedReason)
        }
        let pool = self.pool
        let server = try ScriptedServer { request in pool.handle(request) }
        self.server = server
        bindings.with { values in
            values["upstream"] = .string(server.origin.absoluteString)
            values["dir"] = .string(folder.path)
        }
        let store: String
        switch options.store {
        case .sqlite: store = folder.file("tokens.sqlite3")
        case .postgres(let cluster): store = try cluster.createDatabase("transcript")
        }
        bindings.with { $0["store"] = .string(store) }
        try startAgent("A", arguments: transcript.header.arguments, environment: transcript.header.environment)
    }

    private func startAgent(_ name: String, arguments: [String], environment: [(name: String, value: String)]) throws {
        var filledArguments: [String] = []
        for (index, argument) in arguments.enumerated() {
            filledArguments.append(try bindings.fillString(argument, path: "args[\(index)]").get())
        }
        var env = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": folder.path,
            "no_proxy": "127.0.0.1,localhost",
        ]
        for variable in environment {
            env[variable.name] = try bindings.fillString(variable.value, path: "env.\(variable.name)").get()
        }
        storeSecret = storeSecret ?? env["SMARTCAR_CLIENT_SECRET"]
        let driver = try ReplayedAgent(name: name, binary: options.agent, arguments: filledArguments, environment: env)
        agents[name] = driver
        agentOrder.append(name)
    }

    /// After the last step: closes every agent's input, waits for it to exit, and collects what was left over.
    private func finish(failedAt line: Int?) -> [String] {
        var failures: [String] = []
        for name in agentOrder {
            let driver = agents[name]!
            driver.closeInput()
            guard let exit = driver.waitForExit(until: .now() + options.timeout) else {
                driver.kill(SIGKILL)
                failures.append("agent \(name) did not exit within \(options.timeout) s of its input being closed")
                continue
            }
            if line == nil, !exitChecked.contains(name), exit.signalled || exit.status != 0 {
                failures.append(
                    "agent \(name) \(exit.signalled ? "was killed by signal" : "exited with code") \(exit.status) (an expectExit step says so when that is expected)"
                )
            }
        }
        if line == nil {
            for name in agentOrder {
                let state = agents[name]!.snapshot
                let left = state.messages.filter { !$0.consumed }
                for message in left.prefix(5) {
                    failures.append("agent \(name) sent a message no step expected: \(Matcher.show(message.value))")
                }
                if left.count > 5 {
                    failures.append("agent \(name) sent \(left.count - 5) more messages no step expected")
                }
                for junk in state.junk.prefix(5) {
                    failures.append("agent \(name) wrote something other than a protocol message to stdout: \(junk)")
                }
            }
        }
        failures += pool.unexpectedRequests
        failures += pool.unused(before: line)
        return failures
    }

    private func tearDown() {
        for driver in agents.values { driver.kill(SIGKILL) }
        storeLock?.close()
        server?.stop()
        agents = [:]
        if unsealed, case .postgres(let cluster) = options.store,
            let database = URL(string: storeLocation)?.lastPathComponent,
            !database.isEmpty
        {
            _ = try? cluster.psql("DROP DATABASE \(database) WITH (FORCE)")  // its plaintext, out of the run's scan
        }
        folder = nil
    }

    static let unsealedReason = "transcripts whose agent has no client secret or store key (unsealed by design)"

    /// The scenario's agent keeps its tokens unsealed (no client secret, no store key: by design, and logged): its
    /// store is kept out of the run's scan of the stores it leaves (`TestEvidence`), a PostgreSQL one dropped.
    private var unsealed: Bool {
        !transcript.header.environment.contains { $0.name == "SMARTCAR_CLIENT_SECRET" }
            && !transcript.header.arguments.contains("--store-key-file")
    }

    // MARK: Steps

    /// Performs one step; a failure is returned as its report.
    private func perform(_ step: Transcript.Step) -> String? {
        let deadline = DispatchTime.now() + (step.within ?? transcript.header.timeout ?? options.timeout)
        if case .start(let arguments, let environment) = step.action {
            guard agents[step.agent] == nil else { return "start: an agent named \(step.agent) is already running" }
            var merged = transcript.header.environment.filter { variable in
                !(environment ?? []).contains { $0.name == variable.name }
            }
            merged += environment ?? []
            do {
                try startAgent(step.agent, arguments: arguments ?? transcript.header.arguments, environment: merged)
            } catch {
                return "start: could not start agent \(step.agent): \(error)"
            }
            return nil
        }
        switch step.action {
        case .waitForUpstream(let count):
            let received = pool.waitForRequests(count, until: deadline)
            return received >= count
                ? nil : "waitForUpstream: \(received) of \(count) requests reached the upstream in time"
        case .assertStore(let pattern):
            return assertStore(pattern)
        case .lockStore(let lock):
            return lockStore(lock)
        case .browse(let url, let status, let page):
            return browse(url, status: status, page: page, until: deadline)
        default:
            break
        }
        guard let agent = agents[step.agent] else {
            return "there is no agent \(step.agent) (start it first with {\"start\": \"\(step.agent)\"})"
        }
        switch step.action {
        case .send(let message, let framing):
            return send(message, framing: framing, to: agent)
        case .sendRaw(let bytes):
            return agent.write(bytes) ? nil : "sendRaw: agent \(agent.name)'s input is closed (it exited?)"
        case .expect(let expected, let framing):
            return expect(expected, framing: framing, from: agent, until: deadline)
        case .advanceClock(let seconds):
            return advanceClock(seconds, agent: agent, until: deadline)
        case .closeInput:
            agent.closeInput()
            return nil
        case .signal(let number):
            agent.kill(number)
            return nil
        case .expectExit(let code):
            exitChecked.insert(agent.name)
            guard let exit = agent.waitForExit(until: deadline) else {
                return "expectExit: agent \(agent.name) was still running after the deadline"
            }
            if exit.signalled {
                return "expectExit: agent \(agent.name) was killed by signal \(exit.status), expected exit code \(code)"
            }
            return exit.status == code
                ? nil : "expectExit: agent \(agent.name) exited with code \(exit.status), expected \(code)"
        case .upstream, .waitForUpstream, .assertStore, .lockStore, .start, .browse:
            return nil
        }
    }

    /// A browser's visit: one GET of the filled URL, no redirect followed; status and page text checked.
    private func browse(_ url: String, status: Int, page: String?, until deadline: DispatchTime) -> String? {
        let filled: String
        switch bindings.fillString(url, path: "browse") {
        case .success(let text): filled = text
        case .failure(let failure): return "browse: \(failure)"
        }
        let answer: BrowserGet.Answer
        do {
            answer = try BrowserGet.fetch(filled, until: deadline)
        } catch {
            return "browse: \(filled): \(error)"
        }
        guard answer.status == status else {
            return "browse: \(filled) answered \(answer.status), expected \(status): \(answer.body.prefix(300))"
        }
        if let page, let mismatch = bindings.match(.string(page), .string(answer.body), path: "page") {
            return "browse: the page does not match\n\(mismatch)\nreceived: \(answer.body)"
        }
        return nil
    }

    private func send(_ message: JSONValue, framing: Transcript.Framing, to agent: ReplayedAgent) -> String? {
        let filled: JSONValue
        switch bindings.fill(message) {
        case .success(let value): filled = value
        case .failure(let failure): return "send: \(failure)"
        }
        if filled["method"] != nil, let id = filled["id"] {
            sentIDs[agent.name, default: [:]][id.compactText, default: 0] += 1
        }
        return agent.write(Self.frame(filled.compactText, framing))
            ? nil : "send: agent \(agent.name)'s input is closed (it exited?)"
    }

    static func frame(_ body: String, _ framing: Transcript.Framing) -> [UInt8] {
        switch framing {
        case .line: Array((body + "\n").utf8)
        case .contentLength: Array("Content-Length: \(body.utf8.count)\r\n\r\n".utf8) + Array(body.utf8)
        }
    }

    private func advanceClock(_ seconds: Double, agent: ReplayedAgent, until deadline: DispatchTime) -> String? {
        clockRequests += 1
        let id = JSONValue.string("$clock-\(clockRequests)")
        let request: JSONValue = [
            "jsonrpc": "2.0", "id": id, "method": "$/advanceClock", "params": ["seconds": .double(seconds)],
        ]
        guard agent.write(Self.frame(request.compactText, .line)) else {
            return "advanceClock: agent \(agent.name)'s input is closed"
        }
        let answer = agent.wait(until: deadline) { state -> JSONValue? in
            guard
                let index = state.messages.firstIndex(where: {
                    !$0.consumed && $0.value["id"] == id && $0.value["method"] == nil
                })
            else { return nil }
            state.messages[index].consumed = true
            return state.messages[index].value
        }
        guard let answer else { return "advanceClock: agent \(agent.name) did not answer $/advanceClock in time" }
        guard answer["result"] != nil else {
            return
                "advanceClock: agent \(agent.name) refused $/advanceClock (start it with --allow-clock-control): \(Matcher.show(answer))"
        }
        return nil
    }

    // MARK: Expectations

    private enum Found {
        case matched(Transcript.Framing)
        /// The message the expectation was checked against, and the first difference.
        case mismatch(JSONValue, Mismatch)
    }

    private func expect(
        _ expected: JSONValue, framing: Transcript.Framing?, from agent: ReplayedAgent,
        until deadline: DispatchTime
    ) -> String? {
        let what: String
        let found: Found?
        switch expected {
        case .array(let elements):
            what = "the batch reply"
            found = agent.wait(until: deadline) { state in
                guard let index = state.messages.firstIndex(where: { !$0.consumed && $0.value.arrayValue != nil })
                else { return nil }
                let actual = state.messages[index].value
                if let mismatch = bindings.with({ Self.matchBatch(elements, actual.arrayValue!, &$0) }) {
                    return .mismatch(actual, mismatch)
                }
                state.messages[index].consumed = true
                return .matched(state.messages[index].framing)
            }
        case _ where expected["id"] != nil:
            let id = expected["id"]!
            let owed = sentIDs[agent.name]?[id.compactText] ?? 0
            what = "the response to id \(id.inlineText)"
            found = agent.wait(until: deadline) { state in
                let candidates = state.messages.indices.filter { index in
                    let value = state.messages[index].value
                    return value["method"] == nil && value["id"] == id
                }
                for index in candidates where !state.messages[index].consumed {
                    if bindings.match(expected, state.messages[index].value) == nil {
                        state.messages[index].consumed = true
                        return .matched(state.messages[index].framing)
                    }
                }
                // An answer that does not match fails at once, unless more answers to this id are still owed.
                guard let first = candidates.first(where: { !state.messages[$0].consumed }), candidates.count >= owed
                else { return nil }
                let actual = state.messages[first].value
                return .mismatch(actual, mismatchOf(expected, actual))
            }
        default:
            what = "the notification \(expected["method"]?.inlineText ?? "")"
            found = agent.wait(until: deadline) { state in
                for index in state.messages.indices
                where !state.messages[index].consumed && Self.isNotification(state.messages[index].value) {
                    if bindings.match(expected, state.messages[index].value) == nil {
                        state.messages[index].consumed = true
                        return .matched(state.messages[index].framing)
                    }
                }
                return nil
            }
        }
        switch found {
        case .matched(let actualFraming)?:
            if let framing, framing != actualFraming {
                return
                    "expect (agent \(agent.name)): \(what) came with \(actualFraming.rawValue) framing, expected \(framing.rawValue)"
            }
            return nil
        case .mismatch(let actual, let mismatch)?:
            return """
                expect (agent \(agent.name)): \(what) does not match
                \(mismatch)
                expected: \(expected.inlineText)
                received: \(actual.inlineText)
                """
        case nil:
            return notFound(what, expected, agent)
        }
    }

    private func notFound(_ what: String, _ expected: JSONValue, _ agent: ReplayedAgent) -> String {
        let state = agent.snapshot
        var lines: [String]
        if state.ended, let exit = state.exit {
            lines = [
                "expect (agent \(agent.name)): the agent \(exit.signalled ? "was killed by signal" : "exited with code") \(exit.status) without sending \(what)"
            ]
        } else {
            lines = ["expect (agent \(agent.name)): \(what) did not arrive in time"]
        }
        lines.append("expected: \(expected.inlineText)")
        let waiting = state.messages.filter { !$0.consumed }
        if Self.isNotification(expected),
            let closest = waiting.first(where: { $0.value["method"] == expected["method"] })
        {
            lines.append("closest:  \(closest.value.inlineText)")
            lines.append(mismatchOf(expected, closest.value).description)
        } else if !waiting.isEmpty {
            lines.append(
                "received and not yet expected: "
                    + waiting.prefix(5).map { Matcher.show($0.value) }.joined(separator: "\n  "))
        }
        return lines.joined(separator: "\n")
    }

    private func mismatchOf(_ expected: JSONValue, _ actual: JSONValue) -> Mismatch {
        bindings.with { values in
            var copy = values
            return Matcher.match(expected, actual, bindings: &copy) ?? Mismatch(path: "$", problem: "matches now")
        }
    }

    /// A batch reply matches when each expected element matches the actual element with its id (the
    /// order inside a batch is free).
    private static func matchBatch(
        _ expected: [JSONValue], _ actual: [JSONValue],
        _ bindings: inout [String: JSONValue]
    ) -> Mismatch? {
        guard expected.count == actual.count else {
            return Mismatch(path: "$", problem: "the batch has \(actual.count) responses, expected \(expected.count)")
        }
        var working = bindings
        var remaining = actual
        for element in expected {
            let sameID = remaining.indices.filter { remaining[$0]["id"] == element["id"] }
            guard !sameID.isEmpty else {
                return Mismatch(path: "$", problem: "no response in the batch has id \(element["id"]!.inlineText)")
            }
            guard
                let index = sameID.first(where: { index in
                    var attempt = working
                    guard Matcher.match(element, remaining[index], bindings: &attempt) == nil else { return false }
                    working = attempt
                    return true
                })
            else {
                var copy = working
                let mismatch = Matcher.match(element, remaining[sameID[0]], bindings: &copy)!
                return Mismatch(
                    path: "$[id \(element["id"]!.inlineText)]" + mismatch.path.dropFirst(), problem: mismatch.problem)
            }
            remaining.remove(at: index)
        }
        bindings = working
        return nil
    }

    private static func isNotification(_ value: JSONValue) -> Bool {
        value["method"] != nil && value["id"] == nil
    }

    // MARK: The store

    private var storeLocation: String { bindings.with { $0["store"]?.stringValue ?? "" } }
    /// The client secret the first agent was started with: what its store's tokens are sealed with.
    private var storeSecret: String?

    private func assertStore(_ pattern: JSONValue) -> String? {
        let key: String
        switch bindings.fillString(pattern["key"]?.stringValue ?? "", path: "assertStore.key") {
        case .success(let filled): key = filled
        case .failure(let failure): return "assertStore: \(failure)"
        }
        let row: JSONValue?
        do {
            let probe = try storeLock ?? openStoreProbe(storeLocation, clientSecret: storeSecret)
            row = try probe.row(key)
        } catch {
            return "assertStore: \(error)"
        }
        if pattern["exists"] == false {
            return row.map {
                "assertStore: key \(JSONText.quoted(key)) is in the store, expected it absent: \($0.inlineText)"
            }
        }
        guard let row else { return "assertStore: key \(JSONText.quoted(key)) is not in the store" }
        var members = (pattern.objectValue ?? [:]).filter {
            $0.key != "exists" && $0.key != "key" && $0.key != Matcher.openMember
        }
        members[Matcher.openMember] = true
        guard let mismatch = bindings.match(.object(members), row, path: "store[\(JSONText.quoted(key))]") else {
            return nil
        }
        return
            "assertStore: \(mismatch)\nstored: \(row.setting("accessToken", "…").setting("refreshToken", "…").inlineText)"
    }

    private func lockStore(_ lock: Bool) -> String? {
        if lock {
            guard storeLock == nil else { return "lockStore: the store is already locked" }
            do {
                let probe = try openStoreProbe(storeLocation, clientSecret: storeSecret)
                try probe.lock()
                storeLock = probe
            } catch {
                return "lockStore: \(error)"
            }
        } else {
            guard let probe = storeLock else { return "lockStore false: the store is not locked" }
            probe.close()
            storeLock = nil
        }
        return nil
    }
}
