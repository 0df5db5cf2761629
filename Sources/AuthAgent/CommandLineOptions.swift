import AgentSupport
import Foundation

/// What the command line says. Flags override the environment; the client secret is never a flag
/// (other users can read argv in `ps`), only `SMARTCAR_CLIENT_SECRET` or `--client-secret-file`.
public struct CommandLineOptions: Sendable, Equatable {
    public enum Action: Sendable, Equatable { case run, help, version }

    public var action: Action = .run
    public var logLevel: LogLevel = .info
    /// `--store PATH` or `--store memory`; nil means `SMARTCAR_AUTH_STORE` or the default location.
    public var store: String?
    public var strictStore = false
    public var clientID: String?
    public var clientSecretFile: String?
    public var redirectURI: String?
    public var mode: String?
    public var sandbox = false
    public var maxMessageBytes = 4 << 20
    public var allowClockControl = false
    public var leaseSeconds: Double = 20
    public var stateTTLSeconds: Double = 15 * 60
    public var refreshWindowDays: Double = 7
    public var maxUpstreamConcurrency = 32
    public var requestTimeoutSeconds: Double = 30
    /// How long a store write waits for another process's lock before it fails with `storageError`.
    public var storeBusyTimeoutSeconds: Double = 5
    /// `--record FILE`: write the session as a transcript, secrets replaced by placeholders.
    public var record: String?

    public init() {}

    /// Parses `arguments` (without the program name). Throws a message meant for a person.
    public init(parsing arguments: [String]) throws(CommandLineError) {
        var rest = arguments[...]
        func value(for flag: String) throws(CommandLineError) -> String {
            guard let next = rest.popFirst() else { throw CommandLineError("\(flag) needs a value") }
            return next
        }
        func number(for flag: String, in range: ClosedRange<Double>) throws(CommandLineError) -> Double {
            let text = try value(for: flag)
            guard let n = Double(text), range.contains(n) else {
                throw CommandLineError("\(flag) takes a number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
            }
            return n
        }
        while let argument = rest.popFirst() {
            // Accept --flag=value as well as --flag value.
            if argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") {
                rest.insert(String(argument[argument.index(after: eq)...]), at: rest.startIndex)
                rest.insert(String(argument[..<eq]), at: rest.startIndex)
                continue
            }
            switch argument {
            case "-h", "--help": action = .help
            case "--version": action = .version
            case "--log-level":
                let name = try value(for: argument)
                guard let level = LogLevel(name: name) else {
                    throw CommandLineError("--log-level takes one of \(LogLevel.allCases.map(\.name).joined(separator: ", ")), not '\(name)'")
                }
                logLevel = level
            case "--store": store = try value(for: argument)
            case "--strict-store": strictStore = true
            case "--client-id": clientID = try value(for: argument)
            case "--client-secret-file": clientSecretFile = try value(for: argument)
            case "--client-secret":
                throw CommandLineError("the client secret is never taken from the command line (other users can read it in ps); set SMARTCAR_CLIENT_SECRET or use --client-secret-file PATH")
            case "--redirect-uri": redirectURI = try value(for: argument)
            case "--mode": mode = try value(for: argument)
            case "--sandbox": sandbox = true
            case "--max-message-bytes": maxMessageBytes = Int(try number(for: argument, in: 1024...1_073_741_824))
            case "--allow-clock-control": allowClockControl = true
            case "--lease-seconds": leaseSeconds = try number(for: argument, in: 1...300)
            case "--state-ttl-seconds": stateTTLSeconds = try number(for: argument, in: 1...86_400)
            case "--refresh-window-days": refreshWindowDays = try number(for: argument, in: 0...59)
            case "--max-upstream-concurrency": maxUpstreamConcurrency = Int(try number(for: argument, in: 1...1024))
            case "--request-timeout": requestTimeoutSeconds = try number(for: argument, in: 0.1...600)
            case "--store-busy-timeout": storeBusyTimeoutSeconds = try number(for: argument, in: 0...600)
            case "--record": record = try value(for: argument)
            default: throw CommandLineError("unknown argument '\(argument)' (see --help)")
            }
        }
    }

    /// The flags a replay of a `--record`ed session needs to behave the same (the store and the
    /// credentials are carried by the transcript's header separately).
    public var replayArguments: [String] {
        var arguments: [String] = []
        if allowClockControl { arguments.append("--allow-clock-control") }
        let defaults = CommandLineOptions()
        if requestTimeoutSeconds != defaults.requestTimeoutSeconds { arguments += ["--request-timeout", Self.number(requestTimeoutSeconds)] }
        if leaseSeconds != defaults.leaseSeconds { arguments += ["--lease-seconds", Self.number(leaseSeconds)] }
        if stateTTLSeconds != defaults.stateTTLSeconds { arguments += ["--state-ttl-seconds", Self.number(stateTTLSeconds)] }
        if maxMessageBytes != defaults.maxMessageBytes { arguments += ["--max-message-bytes", String(maxMessageBytes)] }
        return arguments
    }

    private static func number(_ value: Double) -> String {
        value.rounded() == value ? String(Int(value)) : String(value)
    }

    public static let helpText = """
        smartcar-auth-agent \(AgentVersion.current): owns Smartcar OAuth for other programs.
        Speaks JSON-RPC 2.0 on stdin/stdout (Content-Length framing or one JSON message per line);
        logs go to stderr. The protocol is described in Protocol/README.md.

        Usage: smartcar-auth-agent [options]

        Configuration comes from the environment: SMARTCAR_CLIENT_ID, SMARTCAR_CLIENT_SECRET,
        SMARTCAR_REDIRECT_URI, SMARTCAR_MODE (live, test, simulated), SMARTCAR_AUTH_STORE, and the
        endpoint origins SMARTCAR_CONNECT_ORIGIN, SMARTCAR_AUTH_ORIGIN, SMARTCAR_IAM_ORIGIN,
        SMARTCAR_API_ORIGIN. Flags override the environment.

        Options:
          --sandbox                    start a fake Smartcar in-process and use it (offline trial;
                                       tokens are kept in memory unless --store is given)
          --client-id ID               Smartcar client id
          --client-secret-file PATH    read the client secret from PATH (never pass it as a flag)
          --redirect-uri URI           default redirect URI for Connect and code exchange
          --mode live|test|simulated   Connect mode
          --store PATH|memory          token store (default $XDG_STATE_HOME/smartcar-auth-agent/tokens.sqlite3)
          --strict-store               refuse to start on a corrupt store instead of moving it aside
          --lease-seconds N            how long a refresh lease on a key lasts (default 20)
          --refresh-window-days N      refresh idle keys whose refresh token ends within N days (default 7)
          --max-upstream-concurrency N most refreshes in flight to Smartcar at once (default 32)
          --request-timeout SECONDS    overall budget of one call to Smartcar, retries included (default 30)
          --state-ttl-seconds N        how long a Connect state stays valid (default 900)
          --max-message-bytes N        largest message accepted (default 4194304)
          --log-level LEVEL            trace, debug, info, notice, warning, error (default info)
          --store-busy-timeout SECONDS how long a store write waits for another process's lock (default 5)
          --allow-clock-control        enable the $/advanceClock method (tests and transcripts only)
          --record FILE                write this session to FILE as a transcript (Protocol/transcripts),
                                       every secret replaced by a placeholder; created 0600
          --version                    print the version and exit
          -h, --help                   print this help and exit
        """
}

/// A command line the agent cannot run with; its text is meant for a person.
public struct CommandLineError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
