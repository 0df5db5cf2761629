import AgentSupport

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
                if kill(pid, 0) != 0 && errno == ESRCH {
                    logger.notice("process \(pid) that started this agent is gone; exiting")
                    onGone()
                    return
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
