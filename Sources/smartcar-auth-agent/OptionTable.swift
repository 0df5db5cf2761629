import AgentSupport
import SmartcarOAuth

/// One option of the command line, declared once: parsing, `--help` and the arguments a `--record`ed session's
/// replay needs all read it from `table`, so they cannot drift apart.
struct CommandLineOption {
    /// What the option does to the options parsed so far.
    enum Effect {
        /// A switch: no value follows.
        case toggle((inout CommandLineOptions) throws(CommandLineError) -> Void)
        /// Takes the next argument (or the text after `=`); `valueName` stands for it in `--help`.
        case value(valueName: String, (inout CommandLineOptions, String) throws(CommandLineError) -> Void)
    }

    /// Every spelling, as `--help` lists them (`-h`, `--help`).
    let names: [String]
    let effect: Effect
    /// The variable that gives the same setting when the option is absent. `SmartcarConfiguration` and
    /// `StoreLocation` read it; `EnvironmentVariableTests` checks that they agree with this.
    var environmentVariable: String?
    /// The value when neither the option nor its variable is given, as `--help` shows it.
    var defaultValue: String?
    /// One sentence for `--help`; nil keeps the option out of it.
    var help: String?
    /// The arguments that give a replayed agent the same value (none for the default); nil for options a replay
    /// does not need.
    var replayArguments: ((CommandLineOptions) -> [String])?

    /// Every option, in `--help`'s order (which is also the order of a transcript's replay arguments).
    /// Computed, not stored: it is read once or twice per process, and its closures need not be `Sendable`.
    static var table: [CommandLineOption] {
        [
            toggle(
                "--sandbox", \.sandbox,
                help: "start a fake Smartcar in-process and use it (offline trial; tokens are kept in memory "
                    + "unless --store or SMARTCAR_AUTH_STORE names a store, whose grants the fake then accepts)"),
            text("--client-id", "ID", \.clientID, environment: "SMARTCAR_CLIENT_ID", help: "Smartcar client id"),
            text(
                "--client-secret-file", "PATH", \.clientSecretFile,
                help: "read the client secret from PATH instead of SMARTCAR_CLIENT_SECRET (never pass it as a flag)"),
            // Refused, and left out of --help.
            CommandLineOption(
                names: ["--client-secret"],
                effect: .toggle { _ throws(CommandLineError) in
                    throw CommandLineError(
                        "the client secret is never taken from the command line (other users can read "
                            + "it in ps); set SMARTCAR_CLIENT_SECRET or use --client-secret-file PATH")
                }),
            text(
                "--redirect-uri", "URI", \.redirectURI, environment: "SMARTCAR_REDIRECT_URI",
                help: "default redirect URI for Connect and code exchange"),
            text(
                "--mode", SmartcarMode.allCases.map(\.rawValue).joined(separator: "|"), \.mode,
                environment: "SMARTCAR_MODE", defaultValue: SmartcarConfiguration().mode.rawValue,
                help: "Connect mode"),
            text(
                "--store", "PATH|memory|postgresql://URI", \.store, environment: "SMARTCAR_AUTH_STORE",
                defaultValue: "$XDG_STATE_HOME/smartcar-auth-agent/tokens.sqlite3",
                help: "token store: a SQLite file, memory, or a PostgreSQL database shared by many hosts "
                    + "(a libpq URI; PG* variables and ~/.pgpass apply)"),
            text(
                "--store-schema", "NAME", \.storeSchema, environment: "SMARTCAR_AUTH_STORE_SCHEMA",
                defaultValue: AgentLauncher.defaultStoreSchema, help: "the PostgreSQL schema holding the store's tables"
            ),
            text(
                "--store-key-file", "PATH", \.storeKeyFile, environment: "SMARTCAR_AUTH_STORE_KEY_FILE",
                help: "seal the store's tokens with the 256-bit key in PATH instead of a key derived from the client "
                    + "secret"),
            text(
                "--previous-client-secret-file", "PATH", \.previousClientSecretFile,
                help: "rotation: the client secret the store was sealed with before (or "
                    + "SMARTCAR_PREVIOUS_CLIENT_SECRET); its tokens are re-sealed under the current one"),
            text(
                "--previous-store-key-file", "PATH", \.previousStoreKeyFile,
                help: "rotation: the store key the store was sealed with before"),
            toggle(
                "--strict-store", \.strictStore,
                help: "refuse to start on a corrupt store instead of moving it aside"),
            number(
                "--store-busy-timeout", "SECONDS", \.storeBusyTimeoutSeconds, in: 0...600,
                help: "how long a store write waits for another process's lock"),
            toggle(
                "--allow-clock-control", \.allowClockControl, replayed: true,
                help: "enable the $/advanceClock method (tests and transcripts only)"),
            text(
                "--record", "FILE", \.record,
                help: "write this session to FILE as a transcript (Protocol/transcripts), "
                    + "every secret replaced by a placeholder; created 0600"),
            number(
                "--request-timeout", "SECONDS", \.requestTimeoutSeconds, in: 0.1...600, replayed: true,
                help: "overall budget of one call to Smartcar, retries included"),
            number(
                "--lease-seconds", "N", \.agent.leaseSeconds, in: 1...300, replayed: true,
                help: "how long a refresh lease on a key lasts"),
            number(
                "--refresh-window-days", "N", \.agent.refreshWindowDays, in: 0...59,
                help: "refresh idle keys whose refresh token ends within N days"),
            refreshAhead,
            number(
                "--max-upstream-concurrency", "N", \.agent.maxUpstreamConcurrency, in: 1...1024,
                help: "most refreshes in flight to Smartcar at once"),
            number(
                "--state-ttl-seconds", "N", \.agent.stateTTLSeconds, in: 1...86_400, replayed: true,
                help: "how long a Connect state stays valid"),
            number(
                "--max-message-bytes", "N", \.maxMessageBytes, in: 1024...1_073_741_824, replayed: true,
                help: "largest message accepted"),
            logLevel,
            CommandLineOption(
                names: ["--version"], effect: .toggle { $0.action = .version },
                help: "print the version and exit"),
            CommandLineOption(
                names: ["-h", "--help"], effect: .toggle { $0.action = .help },
                help: "print this help and exit"),
        ]
    }

    private static var logLevel: CommandLineOption {
        let names = LogLevel.allCases.map(\.name).joined(separator: ", ")
        return CommandLineOption(
            names: ["--log-level"],
            effect: .value(valueName: "LEVEL") { options, name throws(CommandLineError) in
                guard let level = LogLevel(name: name) else {
                    throw CommandLineError("--log-level takes one of \(names), not '\(name)'")
                }
                options.logLevel = level
            },
            defaultValue: CommandLineOptions().logLevel.name, help: names)
    }

    /// `--refresh-ahead SECONDS`, or its variable (read by `AgentLauncher`, through `refreshAheadSeconds`).
    private static var refreshAhead: CommandLineOption {
        CommandLineOption(
            names: ["--refresh-ahead"],
            effect: .value(valueName: "SECONDS") { options, text throws(CommandLineError) in
                options.refreshAhead = try refreshAheadSeconds(text, from: "--refresh-ahead")
            },
            environmentVariable: "SMARTCAR_AUTH_REFRESH_AHEAD",
            defaultValue: argument(CommandLineOptions().agent.refreshAheadSeconds),
            help: "refresh a key a caller asks for this long before its token stops meeting the caller's "
                + "minValidity, in the background (jittered per key, at most 1/8 of the token's lifetime); 0: off",
            replayArguments: { options in options.refreshAhead.map { ["--refresh-ahead", argument($0)] } ?? [] })
    }

    /// The seconds of `--refresh-ahead` or `SMARTCAR_AUTH_REFRESH_AHEAD` (`name`), 0 to 3600.
    static func refreshAheadSeconds(_ text: String, from name: String) throws(CommandLineError) -> Double {
        guard let seconds = Double(text), (0...3600).contains(seconds) else {
            throw CommandLineError("\(name) takes a number of seconds from 0 to 3600, not '\(text)'")
        }
        return seconds
    }

    private static func toggle(
        _ name: String, _ property: WritableKeyPath<CommandLineOptions, Bool>,
        replayed: Bool = false, help: String
    ) -> CommandLineOption {
        CommandLineOption(
            names: [name], effect: .toggle { $0[keyPath: property] = true }, help: help,
            replayArguments: replayed ? { $0[keyPath: property] ? [name] : [] } : nil)
    }

    private static func text(
        _ name: String, _ valueName: String, _ property: WritableKeyPath<CommandLineOptions, String?>,
        environment: String? = nil, defaultValue: String? = nil, help: String
    ) -> CommandLineOption {
        CommandLineOption(
            names: [name], effect: .value(valueName: valueName) { $0[keyPath: property] = $1 },
            environmentVariable: environment, defaultValue: defaultValue, help: help)
    }

    /// A number within `range`; its default is the property's value in `CommandLineOptions()`.
    private static func number<Value: OptionNumber>(
        _ name: String, _ valueName: String, _ property: WritableKeyPath<CommandLineOptions, Value>,
        in range: ClosedRange<Double>, replayed: Bool = false, help: String
    ) -> CommandLineOption {
        let defaultValue = CommandLineOptions()[keyPath: property]
        let effect = Effect.value(valueName: valueName) { options, text throws(CommandLineError) in
            guard let number = Double(text), range.contains(number) else {
                throw CommandLineError(
                    "\(name) takes a number from \(argument(range.lowerBound)) "
                        + "to \(argument(range.upperBound)), not '\(text)'")
            }
            options[keyPath: property] = Value(number)
        }
        let replay: (CommandLineOptions) -> [String] = { options in
            let value = options[keyPath: property]
            return value == defaultValue ? [] : [name, argument(value.asDouble)]
        }
        return CommandLineOption(
            names: [name], effect: effect, defaultValue: argument(defaultValue.asDouble),
            help: help, replayArguments: replayed ? replay : nil)
    }

    /// A number as an argument would give it: `20`, not `20.0`.
    private static func argument(_ value: Double) -> String {
        value.rounded() == value ? String(Int(value)) : String(value)
    }
}

/// The types a number option sets: read as a `Double` (a count is truncated, as `Int(_:)` does).
protocol OptionNumber: Equatable {
    init(_ value: Double)
    var asDouble: Double { get }
}

extension Double: OptionNumber {
    var asDouble: Double { self }
}

extension Int: OptionNumber {
    var asDouble: Double { Double(self) }
}
