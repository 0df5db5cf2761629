import AgentTestSupport
import Foundation

// The reliability suites of issue 7, against the real agent binary: fuzz, crash, upstream faults, secrets and
// the rotation race; issue 12's model-based concurrency search (model, on SQLite and PostgreSQL); issue 14's
// rotation race across two simulated hosts on PostgreSQL (race-postgres). Short by default (CI); `--long` runs
// the issues' figures. Exit code 1 on any failure.

let usage = """
    Usage: agent-reliability [--long] [--seed N] [--agent PATH] [SUITE...]

    Runs the reliability suites against the smartcar-auth-agent binary (default: the one next to this
    executable; build it first with `swift build`). Suites: \(Suites.all.map(\.name).joined(separator: ", ")) (default: all).
      --long       the issues' figures: 100,000 fuzz inputs, 1,000 kills, a 60 s race of 8 processes,
                   10 minutes of model episodes, a 60 s race of 8 agents on 2 hosts on PostgreSQL
                   restarted every 10 s with an agent connection killed every 3 s
      --seed N     seed of every random choice (default 0x5EED2026); a failure replays with the same seed
                   (the model suite names the seed of the failing episode)
      --agent PATH the agent binary to test

    The model suite reads MODEL_TRACE=1 (every step on stderr) and MODEL_STRICT_SNAPSHOTS=1 (a read that an
    agent answers from its snapshot after another agent replaced the key fails the suite).

    Usage: agent-reliability scan --secret VALUE [--secret VALUE...] FILE...

    Scans files (logs, transcripts) for the secrets in every form the secrets suite knows (JSON-escaped,
    percent- and form-encoded, base64, any 16 consecutive characters); exit code 1 on any hit.

    Usage: agent-reliability scan-stores EVIDENCE-FOLDER

    Scans every store a test run left (Tests/all.sh sets SMARTCAR_AUTH_TEST_EVIDENCE: the tests keep their
    SQLite files with WAL and SHM, a pg_dumpall of each PostgreSQL cluster, and the token values they handed
    out) for those values in the same forms; prints the figures, then PASS or FAIL (exit code 1).
    """

if CommandLine.arguments.dropFirst().first == "scan" {
    exit(SecretScanner.command(Array(CommandLine.arguments.dropFirst(2))))
}
if CommandLine.arguments.dropFirst().first == "scan-stores" {
    exit(StoreScan.command(Array(CommandLine.arguments.dropFirst(2))))
}

var harness = Harness(agentBinary: BinaryLocator.agent)
var selected: [Suites.Entry] = []
var arguments = CommandLine.arguments.dropFirst()
func die(_ message: String, code: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("agent-reliability: \(message)\n".utf8))
    exit(code)
}
while let argument = arguments.popFirst() {
    switch argument {
    case "--long": harness.long = true
    case "--seed":
        guard let text = arguments.popFirst(),
            let seed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        else { die("--seed takes a number") }
        harness.seed = seed
    case "--agent":
        guard let path = arguments.popFirst() else { die("--agent takes a path") }
        harness.agentBinary = path
    case "-h", "--help":
        print(usage)
        exit(0)
    default:
        guard let suite = Suites.all.first(where: { $0.name == argument }) else {
            die("unknown suite or option '\(argument)'\n\(usage)")
        }
        selected.append(suite)
    }
}
guard FileManager.default.isExecutableFile(atPath: harness.agentBinary) else {
    die("no agent binary at \(harness.agentBinary); run `swift build` first (or pass --agent PATH)")
}

func say(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

say(
    "agent-reliability: \(harness.long ? "long" : "short") mode, seed 0x\(String(harness.seed, radix: 16)), agent \(harness.agentBinary)"
)
var failed: [String] = []
for suite in selected.isEmpty ? Suites.all : selected {
    let report = Report(suite: suite.name)
    do {
        try await suite.run(harness, report)
    } catch {
        report.fail("stopped: \(error)")
    }
    say(report.printed())
    if !report.passed { failed.append(suite.name) }
}
say(failed.isEmpty ? "PASS: every suite" : "FAIL: \(failed.joined(separator: ", "))")
exit(failed.isEmpty ? 0 : 1)
