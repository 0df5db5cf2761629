#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where the tokens live: a SQLite file shared by every agent process of this user, memory only
/// (tests, `--store memory`: tokens die with the process), or a PostgreSQL database shared by many hosts.
package enum StoreLocation: Sendable, Equatable {
    case file(String)
    case memory
    /// A libpq connection URI (`postgresql://…` or `postgres://…`), as given.
    case postgres(String)

    /// Reads a `--store` argument (or `$SMARTCAR_AUTH_STORE`): `memory` or `:memory:` mean memory, a
    /// `postgresql://` or `postgres://` URI a PostgreSQL database, anything else is a file path.
    package init(argument: String) {
        if argument == "memory" || argument == ":memory:" {
            self = .memory
        } else if argument.hasPrefix("postgresql://") || argument.hasPrefix("postgres://") {
            self = .postgres(argument)
        } else {
            self = .file(argument)
        }
    }

    /// `$SMARTCAR_AUTH_STORE`, else `$XDG_STATE_HOME/smartcar-auth-agent/tokens.sqlite3`, else
    /// `~/.local/state/smartcar-auth-agent/tokens.sqlite3` (`$HOME`, or the password database when unset).
    /// A relative `XDG_STATE_HOME` is ignored, as the XDG Base Directory specification requires.
    package static func defaultLocation(environment: [String: String]) -> StoreLocation {
        if let explicit = environment["SMARTCAR_AUTH_STORE"], !explicit.isEmpty {
            return StoreLocation(argument: explicit)
        }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            return .file(join(state, "smartcar-auth-agent/tokens.sqlite3"))
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? passwordDatabaseHome() ?? "/"
        return .file(join(home, ".local/state/smartcar-auth-agent/tokens.sqlite3"))
    }

    private static func join(_ folder: String, _ rest: String) -> String {
        folder.hasSuffix("/") ? folder + rest : folder + "/" + rest
    }

    private static func passwordDatabaseHome() -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(geteuid(), &entry, &buffer, buffer.count, &result) == 0, result != nil, let dir = entry.pw_dir
        else {
            return nil
        }
        let home = String(cString: dir)
        return home.isEmpty ? nil : home
    }
}
