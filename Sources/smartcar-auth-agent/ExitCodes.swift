/// The agent's exit codes, listed once: `--help` prints them and `HelpTextTests` checks the README's "Exit codes"
/// section against them.
enum ExitCodes {
    static let table: [(code: String, meaning: String)] = [
        (
            "0",
            "input ended (or a stop signal, or exit after shutdown) and every request was answered; --help, --version"
        ),
        ("1", "the exit notification came without shutdown before it"),
        (
            "2",
            "start-up failed: a bad option, an unreadable secret or key file, a store refused or unreachable "
                + "(one line on stderr says why)"
        ),
        ("3", "rotated tokens the store refused were still unsaved 30 s after the end (the log names the keys)"),
        ("128+N", "a second SIGTERM, SIGINT or SIGHUP (N: its number; 130 for Ctrl-C), or one during start-up"),
    ]
}
