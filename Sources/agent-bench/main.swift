import AgentTestSupport
import FakeSmartcar
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// `swift run -c release agent-bench`: starts the release agent binary (built beside this executable) against
// fake Smartcars in this process, measures it (and the Python SDK peer when it is installed), prints one
// table, and exits 1 only if a hard invariant broke.

signal(SIGPIPE, SIG_IGN)

let options: BenchOptions
do {
    switch try BenchOptions.parse(Array(CommandLine.arguments.dropFirst())) {
    case .help:
        print(BenchOptions.usage)
        exit(0)
    case .run(let parsed):
        options = parsed
    }
} catch {
    progress("\(error)")
    exit(2)
}

func loadAverage() -> [Double] {
    var loads = [Double](repeating: 0, count: 3)
    return getloadavg(&loads, 3) == 3 ? loads.map { ($0 * 100).rounded() / 100 } : []
}

let startedAt = Monotonic.now()
/// A private folder for stores and logs (mode 0700, as the agent requires), removed at the end unless a
/// section failed (its logs are kept). A global, so never removed by going away.
let workFolder: TemporaryFolder
do {
    workFolder = try TemporaryFolder("agent-bench")
} catch {
    progress("cannot create a temporary folder: \(error)")
    exit(2)
}
let work = workFolder.path

let bench: Bench
var report: Report
do {
    let sidecars = try Sidecars(options: options, work: work)
    if let reason = sidecars.peerSkipReason { progress("peer skipped: \(reason)") }
    let fast = try FakeSmartcar()
    var slowOptions = FakeSmartcar.Options()
    slowOptions.latency = .milliseconds(options.latencyMilliseconds)
    let slow = try FakeSmartcar(options: slowOptions)
    progress("agent \(sidecars.agentPath) (\(sidecars.agentVersion)); fakes on ports \(fast.port) and \(slow.port)")
    let postgres = try Bench.setUpPostgres(options: options, slow: slow)
    let fixtures = try Bench.Fixtures.build(
        options: options, folder: work + "/stores", fast: fast, peer: sidecars.hasPeer, postgres: postgres.server)
    bench = Bench(
        options: options, sidecars: sidecars, fast: fast, slow: slow, fixtures: fixtures, postgres: postgres.server,
        simulatedHosts: postgres.hosts, simulatedHostsNote: postgres.hostsNote)
    var name = utsname()
    uname(&name)
    let kernel = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    report = Report(
        generatedAt: Date().formatted(Date.ISO8601FormatStyle()), agentPath: sidecars.agentPath,
        agentVersion: sidecars.agentVersion,
        machine: .init(
            cores: ProcessInfo.processInfo.activeProcessorCount, kernel: kernel, loadAverageAtStart: loadAverage(),
            loadAverageAtEnd: []),
        peer: .init(
            ran: sidecars.hasPeer, python: sidecars.peer?.python, script: sidecars.peer?.script,
            skipped: sidecars.peerSkipReason),
        settings: .init(
            quick: options.quick, stormKeys: options.stormKeys, stormConcurrency: options.stormConcurrency,
            latencyMilliseconds: options.latencyMilliseconds, singleFlightCallers: options.singleFlightCallers,
            storeSizes: options.storeSizes, postgres: postgres.server?.displayName))
} catch {
    progress("\(error)")
    try? FileManager.default.removeItem(atPath: work)
    exit(2)
}

// A section that cannot finish (a process died, a reply was an error) is reported as a failure; the others still run.
var keepWork = false
for section in options.sections {
    do {
        switch section {
        case .transport: try bench.runTransport(into: &report)
        case .coldStart: try bench.runColdStart(into: &report)
        case .singleFlight: try bench.runSingleFlight(into: &report)
        case .storm: try bench.runStorm(into: &report)
        case .stall: try bench.runStall(into: &report)
        case .store: try bench.runStoreScale(into: &report)
        case .shell: try bench.runShellClient(into: &report)
        case .coherence: try bench.runCoherence(into: &report)
        case .leaseCommit: try bench.runLeaseCommit(into: &report)
        case .fleetStorm: try bench.runFleetStorm(into: &report)
        case .live: try bench.runLiveWorkload(into: &report)
        }
    } catch {
        progress("section \(section.rawValue) failed: \(error) (logs kept in \(work))")
        keepWork = true
        let summary = "\(error)".split(separator: "\n").first.map(String.init) ?? ""
        report.add(
            Row(
                id: "\(section.rawValue).failed", measure: "\(section.rawValue) did not finish: \(summary.prefix(100))",
                unit: "", target: "finishes", verdict: .fail))
    }
}
bench.fast.stop()
bench.slow.stop()
bench.simulatedHosts.removeAll()
if let left = bench.postgres?.dropSchemas() { progress(left) }
report.machine.loadAverageAtEnd = loadAverage()
report.durationSeconds = (Double(Monotonic.now() - startedAt) / 1e9 * 10).rounded() / 10

let peerLine =
    bench.sidecars.peer.map { "peer: Python SDK sidecar (\($0.python))" }
    ?? "peer: skipped (\(bench.sidecars.peerSkipReason ?? ""))"
let header = """
    agent-bench: \(bench.sidecars.agentVersion), \(report.machine.cores) cores, load \(report.machine.loadAverageAtStart.map { String($0) }.joined(separator: " ")) at start, \(report.durationSeconds) s
    \(peerLine); floor: cat over the same pipes, same client\(report.settings.postgres.map { "\nPostgreSQL: \($0)" } ?? "")
    """
let table =
    header + "\n\n" + report.table() + "\n\n"
    + (report.invariantsHeld ? "Hard invariants held." : "A HARD INVARIANT FAILED (see FAIL above).") + "\n"
let toStdout = options.jsonPath != "-"
if toStdout {
    FileHandle.standardOutput.write(Data(table.utf8))
} else {
    FileHandle.standardError.write(Data(table.utf8))
}
if let path = options.jsonPath {
    do {
        let data = try report.json() + Data("\n".utf8)
        if path == "-" { FileHandle.standardOutput.write(data) } else { try data.write(to: URL(fileURLWithPath: path)) }
    } catch {
        progress("could not write the JSON: \(error)")
        exit(2)
    }
}
if !keepWork { try? FileManager.default.removeItem(atPath: work) }
exit(report.invariantsHeld ? 0 : 1)
