#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the agent does when it crashes: say so in one line on stderr and die of the signal.
///
/// Swift's own crash report prints, beside the backtrace, the memory that each register points at, and a
/// register may point at a token or the client secret: secrets must never reach crash output. Its handler
/// also keeps a process alive after a SIGQUIT or SIGSEGV sent from outside. Whoever sets `SWIFT_BACKTRACE`
/// asks for the runtime's reports and gets them.
enum CrashSignals {
    static func install() {
        guard getenv("SWIFT_BACKTRACE") == nil else { return }
        for number in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGQUIT, SIGSYS] {
            var action = sigaction()
            #if canImport(Glibc)
                action.__sigaction_handler.sa_handler = crashed
            #else
                action.__sigaction_u.__sa_handler = crashed
            #endif
            sigemptyset(&action.sa_mask)
            // The default action is back once the handler runs: the signal raised again ends the process.
            action.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)
            sigaction(number, &action, nil)
        }
    }
}

/// Async-signal-safe: one `write` of a constant, then the signal again with its default action.
private func crashed(_ number: Int32) {
    let line: StaticString =
        "smartcar-auth-agent: crashed (fatal signal); no crash report is written because it could show secrets; set SWIFT_BACKTRACE=enable=yes to get one\n"
    _ = write(STDERR_FILENO, line.utf8Start, line.utf8CodeUnitCount)
    raise(number)
}
