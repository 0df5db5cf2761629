import AgentTestSupport
import Foundation

/// What `{{store}}` names in a scenario.
package enum ReplayStore: Sendable {
    /// A SQLite file in the scenario's private folder.
    case sqlite
    /// A fresh database of this cluster per scenario (its libpq URI).
    case postgres(PostgresCluster)
}

/// How to replay: which agent binary, which store, and how long a step may wait.
package struct ReplayOptions: Sendable {
    /// The agent executable to drive (the real `smartcar-auth-agent`, or another implementation).
    package var agent: String
    package var store: ReplayStore = .sqlite
    /// Seconds a waiting step waits unless the transcript says otherwise.
    package var timeout: Double = 10

    package init(agent: String) { self.agent = agent }
}

/// The outcome of one transcript: passed, or the reasons it failed (each already a readable report).
package struct ReplayResult: Sendable {
    package var name: String
    package var failures: [String]
    package var seconds: Double
    /// Everything each agent sent and every request the upstream received, in order (for `--verbose`
    /// and for writing a new scenario: run it, read what came back).
    package var log: [String] = []
    package var passed: Bool { failures.isEmpty }

    /// `PASS name (0.42 s)`, or `FAIL name` followed by every failure (its details indented further).
    package var report: String {
        let head = "\(passed ? "PASS" : "FAIL") \(name) (\(String(format: "%.2f", seconds)) s)"
        guard !passed else { return head }
        let body = failures.map { failure in
            failure.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
                .map { ($0.offset == 0 ? "  " : "    ") + $0.element }.joined(separator: "\n")
        }
        return ([head] + body).joined(separator: "\n")
    }
}

/// Replays transcripts against an agent binary.
package enum Replay {
    /// Loads and replays the transcript at `path`; a transcript that cannot be loaded fails with the reason.
    package static func run(path: String, options: ReplayOptions) async -> ReplayResult {
        do {
            return await run(try Transcript.load(path: path), options: options)
        } catch {
            return ReplayResult(name: path, failures: [error.description], seconds: 0)
        }
    }

    /// Replays on a thread of its own (the replay blocks while it waits for the agent), so callers on the
    /// cooperative pool never block it.
    package static func run(_ transcript: Transcript, options: ReplayOptions) async -> ReplayResult {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: runBlocking(transcript, options: options)) }
            thread.name = "transcript \(transcript.name)"
            thread.start()
        }
    }

    /// Replays on the calling thread, blocking it until the scenario is over.
    package static func runBlocking(_ transcript: Transcript, options: ReplayOptions) -> ReplayResult {
        let started = Date()
        let runner = Runner(transcript, options: options)
        let failures = runner.run()
        return ReplayResult(
            name: transcript.name, failures: failures, seconds: Date().timeIntervalSince(started), log: runner.log)
    }
}
