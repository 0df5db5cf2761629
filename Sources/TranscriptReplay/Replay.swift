import Foundation

/// How to replay: which agent binary, and how long a step may wait.
public struct ReplayOptions: Sendable {
    /// The agent executable to drive (the real `smartcar-auth-agent`, or another implementation).
    public var agent: String
    /// Seconds a waiting step waits unless the transcript says otherwise.
    public var timeout: Double = 10

    public init(agent: String) { self.agent = agent }
}

/// The outcome of one transcript: passed, or the reasons it failed (each already a readable report).
public struct ReplayResult: Sendable {
    public var name: String
    public var failures: [String]
    public var seconds: Double
    /// Everything each agent sent and every request the upstream received, in order (for `--verbose`
    /// and for writing a new scenario: run it, read what came back).
    public var log: [String] = []
    public var passed: Bool { failures.isEmpty }

    /// `PASS name (0.42 s)`, or `FAIL name` followed by every failure (its details indented further).
    public var report: String {
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
public enum Replay {
    /// Loads and replays the transcript at `path`; a transcript that cannot be loaded fails with the reason.
    public static func run(path: String, options: ReplayOptions) async -> ReplayResult {
        do {
            return await run(try Transcript.load(path: path), options: options)
        } catch {
            return ReplayResult(name: path, failures: [error.description], seconds: 0)
        }
    }

    /// Replays on a thread of its own (the replay blocks while it waits for the agent), so callers on the
    /// cooperative pool never block it.
    public static func run(_ transcript: Transcript, options: ReplayOptions) async -> ReplayResult {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: runBlocking(transcript, options: options)) }
            thread.name = "transcript \(transcript.name)"
            thread.start()
        }
    }

    /// Replays on the calling thread, blocking it until the scenario is over.
    public static func runBlocking(_ transcript: Transcript, options: ReplayOptions) -> ReplayResult {
        let started = Date()
        let runner = Runner(transcript, options: options)
        let failures = runner.run()
        return ReplayResult(name: transcript.name, failures: failures, seconds: Date().timeIntervalSince(started), log: runner.log)
    }
}
