/// The bench's command line. Defaults are the full run the issue asks for (a few minutes); `--quick`
/// shrinks every sample for a smoke run.
struct BenchOptions: Sendable {
    var quick = false
    /// `--json PATH` writes the numbers there; `--json` or `--json -` writes them to stdout (the table then goes to stderr).
    var jsonPath: String?
    var usePeer = true
    var agentPath: String?
    var peerScript: String?
    var python: String?
    var stormKeys = 10_000
    var stormConcurrency = 32
    var latencyMilliseconds = 50
    var singleFlightCallers = 10_000
    /// The PostgreSQL store compared with SQLite, column beside column (nil: SQLite alone).
    var postgres: PostgresChoice?
    /// Agents in the fleet storm (half on each simulated host when they run on PostgreSQL).
    var fleetAgents = 4
    /// The sections to run, in this order; `--only` picks some.
    var sections = Section.allCases

    // Sample sizes, set from `quick`.
    var roundTripRounds = 10
    var roundTripsPerRound = 2_000
    var roundTripWarmup = 2_000
    var pipelineRequests = [1: 10_000, 16: 40_000, 256: 60_000]
    var pipelineRounds = 3
    /// Enough that the median stands above this machine's start-to-start spread (a 15-start median moved by 4 ms
    /// from one run to the next).
    var coldStarts = 101
    var peerColdStarts = 5
    var storeSizes = [1_000, 100_000, 1_000_000]
    var persistSamples = 200
    var refreshSamples = 20
    var rssKeys = 100_000
    var shellRuns = 20
    var leaseCommitSamples = 400

    enum PostgresChoice: Sendable, Equatable {
        /// `--store postgresql://…`: a server the user runs; the bench works in schemas of its own there.
        case uri(String)
        /// `--postgres`: a throwaway cluster the bench starts (initdb, pg_ctl) and removes.
        case throwaway
    }

    static let usage = """
        agent-bench: measures the release smartcar-auth-agent against a fake Smartcar and, when the Smartcar
        Python SDK is installed, against a sidecar written on it (../shared/bench/python_sdk_sidecar.py).

        Usage: swift run -c release agent-bench [options]

          --quick                    small samples, storm of 2,000 keys, no 1,000,000-key store (about a minute)
          --json [PATH|-]            also write every number as JSON to PATH (or stdout; the table then goes to stderr)
          --no-peer                  do not run the Python SDK sidecar
          --store postgresql://…     also measure the agent on this PostgreSQL store, in a column beside SQLite's
                                     (schemas agent_bench_PID_*, dropped at the end with psql when it is on PATH)
          --postgres                 the same on a throwaway PostgreSQL cluster the bench starts itself
          --fleet-agents N           agents in the fleet storm, half on each simulated host (default 4)
          --storm-keys N             keys expiring at once in the refresh storms (default 10000)
          --storm-concurrency N      the agent's --max-upstream-concurrency in the storm (default 32)
          --latency-ms N             the fake's latency in the single-flight and storm runs (default 50)
          --only LIST                run only these sections (comma-separated): \(Section.allCases.map(\.rawValue).joined(separator: ","))
          --store-sizes LIST         store sizes for the store-scale section (default 1000,100000,1000000)
          --agent PATH               the agent binary (default: next to this executable)
          --peer PATH                the peer sidecar script
          --python PATH              the Python interpreter for the peer (default: python3 on PATH)
          -h, --help                 this help

        Exits 1 when a hard invariant fails (single-flight refreshes != 1, storm errors > 0, storm
        concurrency above its bound; fleet storm errors, a key not refreshed exactly once, one key answered
        with different tokens) or a section cannot finish, 2 on a usage or setup error; never for a missed
        speed target.
        """

    enum Section: String, CaseIterable, Sendable {
        case transport, coldStart = "cold-start", singleFlight = "single-flight", storm, stall, store, shell, coherence
        case leaseCommit = "lease-commit", fleetStorm = "fleet-storm", live
    }

    struct UsageError: Error, CustomStringConvertible {
        let description: String
    }

    enum Parsed {
        case run(BenchOptions)
        case help
    }

    static func parse(_ arguments: [String]) throws(UsageError) -> Parsed {
        var options = BenchOptions()
        var rest = arguments[...]
        func value(_ flag: String) throws(UsageError) -> String {
            guard let next = rest.popFirst() else { throw UsageError(description: "\(flag) needs a value") }
            return next
        }
        func number(_ flag: String, _ range: ClosedRange<Int>) throws(UsageError) -> Int {
            let text = try value(flag)
            guard let n = Int(text), range.contains(n) else {
                throw UsageError(
                    description:
                        "\(flag) takes a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
            }
            return n
        }
        var stormKeysGiven = false, storeSizesGiven = false
        while let argument = rest.popFirst() {
            switch argument {
            case "-h", "--help": return .help
            case "--quick": options.quick = true
            case "--json":
                if let next = rest.first, next == "-" || !next.hasPrefix("--") {
                    rest.removeFirst()
                    options.jsonPath = next
                } else {
                    options.jsonPath = "-"
                }
            case "--no-peer": options.usePeer = false
            case "--store":
                let uri = try value(argument)
                guard uri.hasPrefix("postgresql://") || uri.hasPrefix("postgres://") else {
                    throw UsageError(
                        description: "--store takes a postgresql:// or postgres:// URI (SQLite is always measured)")
                }
                options.postgres = .uri(uri)
            case "--postgres": options.postgres = .throwaway
            case "--fleet-agents": options.fleetAgents = try number(argument, 2...64)
            case "--only":
                let names = try value(argument).split(separator: ",").map(String.init)
                let unknown = names.filter { Section(rawValue: $0) == nil }
                guard unknown.isEmpty, !names.isEmpty else {
                    throw UsageError(
                        description:
                            "--only takes sections among \(Section.allCases.map(\.rawValue).joined(separator: ",")), not '\(unknown.joined(separator: ","))'"
                    )
                }
                options.sections = Section.allCases.filter { names.contains($0.rawValue) }
            case "--storm-keys":
                options.stormKeys = try number(argument, 1...1_000_000)
                stormKeysGiven = true
            case "--storm-concurrency": options.stormConcurrency = try number(argument, 1...1024)
            case "--latency-ms": options.latencyMilliseconds = try number(argument, 0...10_000)
            case "--store-sizes":
                let text = try value(argument)
                let sizes = text.split(separator: ",").compactMap { Int($0) }.filter { $0 >= 2 && $0 <= 10_000_000 }
                guard !sizes.isEmpty, sizes.count == text.split(separator: ",").count else {
                    throw UsageError(
                        description: "--store-sizes takes sizes from 2 to 10000000 separated by commas, not '\(text)'")
                }
                options.storeSizes = Array(Set(sizes)).sorted()
                storeSizesGiven = true
            case "--agent": options.agentPath = try value(argument)
            case "--peer": options.peerScript = try value(argument)
            case "--python": options.python = try value(argument)
            default: throw UsageError(description: "unknown argument '\(argument)' (see --help)")
            }
        }
        if options.quick {
            options.roundTripRounds = 4
            options.roundTripsPerRound = 500
            options.roundTripWarmup = 500
            options.pipelineRequests = [1: 2_000, 16: 10_000, 256: 20_000]
            options.pipelineRounds = 1
            options.coldStarts = 5
            options.peerColdStarts = 2
            if !storeSizesGiven { options.storeSizes = [1_000, 100_000] }
            options.persistSamples = 15
            options.refreshSamples = 5
            options.shellRuns = 5
            options.leaseCommitSamples = 100
            if !stormKeysGiven { options.stormKeys = 2_000 }
        }
        return .run(options)
    }
}
