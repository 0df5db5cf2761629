import AgentSupport
import AuthAgent

/// What the command line says. Flags override the environment; the client secret is never a flag
/// (other users can read argv in `ps`), only `SMARTCAR_CLIENT_SECRET` or `--client-secret-file`.
/// Which flags exist, and what each sets, is declared once in `CommandLineOption.table`.
struct CommandLineOptions: Equatable {
    enum Action: Equatable { case run, help, version }

    var action: Action = .run
    var logLevel: LogLevel = .info
    /// `--store PATH`, `--store memory` or `--store postgresql://…`; nil means `SMARTCAR_AUTH_STORE` or the
    /// default location.
    var store: String?
    /// `--store-schema NAME`: the PostgreSQL schema of the store's tables; nil means `SMARTCAR_AUTH_STORE_SCHEMA` or
    /// `smartcar_auth`.
    var storeSchema: String?
    var strictStore = false
    /// `--store-key-file PATH` (or `SMARTCAR_AUTH_STORE_KEY_FILE`): seal the store with this key instead of one
    /// derived from the client secret.
    var storeKeyFile: String?
    /// During a rotation, what the store was sealed with before: its rows are re-sealed at open.
    var previousClientSecretFile: String?
    var previousStoreKeyFile: String?
    var clientID: String?
    var clientSecretFile: String?
    var redirectURI: String?
    var mode: String?
    var sandbox = false
    var maxMessageBytes = 4 << 20
    var allowClockControl = false
    /// The agent's own numbers (leases, Connect states, background refresh, upstream concurrency).
    var agent = AgentSettings()
    /// `--refresh-ahead SECONDS`; nil means `SMARTCAR_AUTH_REFRESH_AHEAD` or the default (`AgentLauncher`).
    var refreshAhead: Double?
    var requestTimeoutSeconds: Double = 30
    /// How long a store write waits for another process's lock before it fails with `storageError`.
    var storeBusyTimeoutSeconds: Double = 5
    /// `--record FILE`: write the session as a transcript, secrets replaced by placeholders.
    var record: String?

    init() {}

    /// Parses `arguments` (without the program name) by `CommandLineOption.table`. Throws a message meant for
    /// a person.
    init(parsing arguments: [String]) throws(CommandLineError) {
        let table = CommandLineOption.table
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            // Accept --flag=value as well as --flag value.
            if argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") {
                rest.insert(String(argument[argument.index(after: eq)...]), at: rest.startIndex)
                rest.insert(String(argument[..<eq]), at: rest.startIndex)
                continue
            }
            guard let option = table.first(where: { $0.names.contains(argument) }) else {
                throw CommandLineError("unknown argument '\(argument)' (see --help)")
            }
            switch option.effect {
            case .toggle(let apply):
                try apply(&self)
            case .value(_, let apply):
                guard let value = rest.popFirst() else { throw CommandLineError("\(argument) needs a value") }
                try apply(&self, value)
            }
        }
    }

    /// The flags a replay of a `--record`ed session needs to behave the same (the store and the
    /// credentials are carried by the transcript's header separately); defaults are left out.
    var replayArguments: [String] {
        CommandLineOption.table.flatMap { $0.replayArguments?(self) ?? [] }
    }
}

/// A command line the agent cannot run with; its text is meant for a person.
struct CommandLineError: Error, Equatable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
