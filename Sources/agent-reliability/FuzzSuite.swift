import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Fuzz: random and mutated frames and JSON, each followed by a sentinel ping, against the real binary.
/// The agent must never die or hang (every chunk is answered within a deadline), answer every identifiable
/// request exactly once (sentinels, and inputs whose id it can read), never answer an id twice, write only
/// protocol messages, and keep its memory bounded.
@MainActor
struct FuzzSuite {
    let harness: Harness

    static let maxMessageBytes = 65536
    static let inputsPerChunk = 250
    /// Resident memory allowed at any point, and growth from the first chunk of a session to its end.
    static let residentLimitKiB = 256 * 1024
    static let growthLimitKiB = 64 * 1024

    private struct Tally {
        var inputs = 0
        var sentinels = 0
        var owedChecked = 0
        var brokenButAnswered = 0
        var responses = 0
        var kinds: [String: Int] = [:]
        var peakKiB = 0
        var worstGrowthKiB = 0
        var sessions = 0
    }

    func run(_ report: Report) throws {
        let total = harness.long ? 100_000 : 10_000
        // Long sessions in the long mode, so that a leak shows in one process's memory.
        let perSession = harness.long ? 25_000 : 2_500
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        var inputs = FuzzInputs(seed: harness.seed, maxMessageBytes: Self.maxMessageBytes)
        var tally = Tally()
        while tally.inputs < total && report.passed {
            tally.sessions += 1
            try session(
                tally.sessions, inputs: &inputs, count: min(perSession, total - tally.inputs), fake: fake,
                tally: &tally, report: report)
        }
        report.figure("inputs fuzzed", tally.inputs)
        report.counts("inputs by kind", tally.kinds)
        report.figure("sentinels answered", tally.sentinels)
        report.figure("ids owed, answered once", tally.owedChecked)
        report.figure("broken inputs answered", tally.brokenButAnswered)
        report.figure("responses received", tally.responses)
        report.figure("agent sessions", tally.sessions)
        report.figure("peak RSS", "\(tally.peakKiB / 1024) MiB (limit \(Self.residentLimitKiB / 1024) MiB)")
        report.figure(
            "worst RSS growth",
            "\(tally.worstGrowthKiB / 1024) MiB in a session (limit \(Self.growthLimitKiB / 1024) MiB)")
    }

    private func session(
        _ number: Int, inputs: inout FuzzInputs, count: Int, fake: FakeSmartcar, tally: inout Tally, report: Report
    ) throws {
        let level = ["info", "debug", "trace"][number % 3]
        let agent = try harness.agent(
            [
                "--store", "memory", "--max-message-bytes", String(Self.maxMessageBytes), "--request-timeout", "5",
                "--log-level", level,
            ], fake: fake)
        var owed: [JSONValue: Owed] = [:]
        var atMostOnce: [JSONValue] = []
        /// What each owed id came from, and the input's bytes, to explain a failure.
        var origin: [JSONValue: String] = [:]
        var inputBytes: [JSONValue: [UInt8]] = [:]
        func owe(_ id: JSONValue, _ what: Owed, _ from: String) {
            owed[id] = what
            origin[id] = from
        }

        // The first message fixes the answers' framing; both are exercised.
        let start = JSONValue.string("s-\(number)-start")
        let ping = Requests.request(id: start, "ping")
        agent.send(number % 2 == 0 ? Requests.framed(ping) : Array((ping + "\n").utf8))
        owe(start, .result, "the first ping")
        let initialize = agent.request(
            .string("s-\(number)-initialize"), "initialize",
            ["processId": .int(Int64(getpid())), "notifications": true, "clientInfo": ["name": "agent-reliability"]])
        owe(initialize, .result, "initialize")
        for (index, key) in (0..<4).map({ "fuzz-key-\($0)" }).enumerated() {
            let minted = fake.mintTokens(userID: key)
            let id = agent.request(
                .string("s-\(number)-seed-\(index)"), "storeToken",
                [
                    "key": .string(key), "accessToken": .string(minted.accessToken),
                    "refreshToken": .string(minted.refreshToken),
                    "expiresAt": "2030-01-01T00:00:00Z",
                ])
            owe(id, .result, "seeding storeToken")
        }

        // A mutation can turn one input's id into another's (a flipped digit), so "exactly once" is judged
        // against how often an id occurs in everything sent.
        var census = IDCensus()
        var sent = 0
        var firstKiB: Int?
        var lastKiB = 0
        while sent < count {
            var bytes: [UInt8] = []
            var chunkIDs: [JSONValue] = sent == 0 ? Array(owed.keys) : []
            var previous: [JSONValue: [UInt8]] = [:]
            for _ in 0..<min(Self.inputsPerChunk, count - sent) {
                let input = inputs.next()
                sent += 1
                tally.kinds[input.kind, default: 0] += 1
                bytes += input.bytes
                for (id, what) in input.owed { owe(id, what, input.kind); chunkIDs.append(id) }
                atMostOnce += input.atMostOnce
                for id in input.owed.map(\.id) + input.atMostOnce { inputBytes[id] = input.bytes }
                let sentinel = JSONValue.string("s-\(number)-\(sent)")
                bytes += inputs.sentinel(sentinel.stringValue!)
                owe(sentinel, .result, "the sentinel after \(input.kind)")
                previous[sentinel] = input.bytes
                chunkIDs.append(sentinel)
                if sent % 5 == 0 {
                    let line = JSONValue.string("s-\(number)-\(sent)-line")
                    bytes += inputs.lineSentinel(line.stringValue!)
                    owe(line, .result, "a line sentinel")
                    chunkIDs.append(line)
                }
            }
            census.count(in: bytes)
            guard agent.send(bytes) else {
                let exitText = agent.exitStatus(within: .seconds(5)).map(String.init) ?? "?"
                report.fail(
                    "session \(number): the agent stopped reading its input after \(sent) inputs "
                        + "(exit \(exitText)); stderr: \(agent.stderr.suffix(1500))")
                return
            }
            var firstUnanswered = 0
            let answered = agent.waitUntil(.now + .seconds(60)) { contents in
                while firstUnanswered < chunkIDs.count, contents.count(chunkIDs[firstUnanswered]) > 0 {
                    firstUnanswered += 1
                }
                return firstUnanswered == chunkIDs.count
            }
            guard answered else {
                let inbox = agent.inbox
                let missing = chunkIDs.filter { inbox.count($0) == 0 }
                let examples = missing.prefix(3).map { id in
                    let before = previous[id].map { " (input before it: \(Self.escaped($0)))" } ?? ""
                    return "\(id.compactText) from \(origin[id] ?? "?")\(before)"
                }
                let exitText = agent.isRunning ? nil : agent.exitStatus(within: .seconds(5)).map(String.init) ?? "?"
                let state = exitText.map { "exited with \($0)" } ?? "still running (a hang)"
                report.fail(
                    "session \(number): \(missing.count) owed ids unanswered within 60 s after \(sent) inputs; the agent is \(state). \(examples.joined(separator: "; ")). stderr: \(agent.keepStderr())"
                )
                agent.kill()
                return
            }
            if let kiB = agent.residentKiB {
                if firstKiB == nil { firstKiB = kiB }
                lastKiB = kiB
                tally.peakKiB = max(tally.peakKiB, kiB)
                report.check(
                    kiB <= Self.residentLimitKiB,
                    "session \(number): RSS \(kiB / 1024) MiB after \(sent) inputs exceeds \(Self.residentLimitKiB / 1024) MiB"
                )
            }
        }
        if let firstKiB {
            tally.worstGrowthKiB = max(tally.worstGrowthKiB, lastKiB - firstKiB)
            report.check(
                lastKiB - firstKiB <= Self.growthLimitKiB,
                "session \(number): RSS grew from \(firstKiB / 1024) to \(lastKiB / 1024) MiB")
        }

        // Three ways to end: end of input, shutdown then exit, or a frame that never ends.
        switch number % 3 {
        case 0:
            agent.closeInput()
        case 1:
            owe(agent.request(.string("s-\(number)-shutdown"), "shutdown"), .result, "shutdown")
            _ = agent.response(.string("s-\(number)-shutdown"))
            agent.sendLine(Requests.notification("exit"))
        default:
            let endless = inputs.endlessBody("s-\(number)-endless")
            agent.send(endless.bytes)
            for (id, what) in endless.owed { owe(id, what, endless.kind) }
            agent.closeInput()
        }
        let status = agent.exitStatus(within: .seconds(60))
        report.check(
            status == 0,
            "session \(number): the agent exited with \(status.map(String.init) ?? "nothing (still running after 60 s)"); stderr: \(agent.keepStderr())"
        )

        do {
            let contents = agent.inbox
            for (id, what) in owed {
                let responses = contents.byID[id] ?? []
                let occurrences = census.occurrences(id)
                if occurrences > 1 {
                    report.check(
                        (1...occurrences).contains(responses.count),
                        "session \(number): \(id.compactText) (\(origin[id] ?? "?")) occurs \(occurrences) "
                            + "times in the input but was answered \(responses.count) times")
                } else if responses.count != 1 {
                    report.fail(
                        "session \(number): \(id.compactText) (\(origin[id] ?? "?")) was answered "
                            + "\(responses.count) times; input: \(inputBytes[id].map(Self.escaped) ?? "?")")
                } else if !what.accepts(responses[0]) {
                    report.fail(
                        "session \(number): \(id.compactText) (\(origin[id] ?? "?")) expected \(what), "
                            + "got \(responses[0].compactText.prefix(400)); "
                            + "input: \(inputBytes[id].map(Self.escaped) ?? "?")")
                }
            }
            for id in atMostOnce {
                let times = contents.count(id)
                let answers = contents.byID[id].map { $0.map { $0.compactText.prefix(200) } } ?? []
                report.check(
                    times <= census.occurrences(id),
                    "session \(number): \(id.compactText) occurs \(census.occurrences(id)) times in the "
                        + "input but was answered \(times) times: \(answers); "
                        + "input: \(inputBytes[id].map(Self.escaped) ?? "?")")
                if times == 1 { tally.brokenButAnswered += 1 }
            }
            let internalErrors = contents.byID.values.joined().filter { $0.errorCode == -32603 }
            let example = internalErrors.first.map { $0.compactText.prefix(300) } ?? ""
            report.check(
                internalErrors.isEmpty,
                "session \(number): \(internalErrors.count) internal errors, e.g. \(example)")
            report.check(
                contents.violations.isEmpty,
                "session \(number): stdout carried non-protocol output: \(contents.violations.prefix(3))")
            tally.responses += contents.byID.values.reduce(0) { $0 + $1.count }
        }
        tally.inputs += sent
        tally.sentinels += owed.keys.filter { $0.stringValue?.hasPrefix("s-") == true }.count
        tally.owedChecked += owed.count
    }

    /// Bytes as readable text for a failure message (control and non-ASCII bytes escaped, long input cut).
    static func escaped(_ bytes: [UInt8]) -> String {
        let shown = bytes.prefix(240).map { byte -> String in
            switch byte {
            case 0x0A: "\\n"
            case 0x0D: "\\r"
            case 0x20..<0x7F: String(UnicodeScalar(byte))
            default: String(format: "\\x%02X", byte)
            }
        }.joined()
        return bytes.count > 240 ? shown + "…(\(bytes.count) bytes)" : shown
    }
}
