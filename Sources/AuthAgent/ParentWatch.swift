import AgentSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Watches the process named in `initialize`'s `processId`; when it is gone the agent exits, so an editor or
/// script that died without closing the pipe does not leave an orphaned agent behind.
enum ParentWatch {
    static func exitWhenGone(
        pid: Int32, logger: Logger, interval: Duration = .milliseconds(500), onGone: @escaping @Sendable () -> Void
    ) {
        Task.detached {
            while !Task.isCancelled {
                if isGone(pid) {
                    logger.notice("process \(pid) that started this agent is gone; exiting")
                    onGone()
                    return
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Whether `pid` no longer runs: no such process, or (Linux) a zombie, which has exited but whose parent
    /// has not reaped it yet. A zombie answers `kill(pid, 0)` like a live process.
    static func isGone(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        #if os(Linux)
            // /proc/<pid>/stat is `pid (comm) S ...`; comm may hold spaces and parentheses, so the state is the
            // first field after the last ')'.
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
            return state == "Z" || state == "X"
        #else
            return false
        #endif
    }
}
