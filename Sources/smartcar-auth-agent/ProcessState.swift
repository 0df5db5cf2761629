import AgentSupport
import Foundation
import JSONRPC
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process state the agent fixes before anything else runs: the three standard descriptors and core
/// dumps.
enum ProcessState {
    /// Opens `/dev/null` in place of any of descriptors 0, 1 and 2 that the agent was started without
    /// (`2>&-`). Otherwise the first file the agent opens takes the free number: with 2 closed, the `dup` that
    /// saves the protocol's stdout would return 2, and every log line would go to the client.
    static func fillClosedStandardDescriptors() {
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
            // open returns the lowest free number: the one just found closed (lower ones are open by now).
            let opened = open("/dev/null", O_RDWR)
            if opened >= 0 && opened != fd {
                dup2(opened, fd)
                close(opened)
            }
        }
    }

    /// No core dump, whatever `ulimit -c` says: a core holds the client secret and every token in memory.
    /// RLIMIT_CORE 0 (soft and hard, so no child of ours raises it) and, on Linux, not dumpable, which also
    /// covers a `core_pattern` pipe and keeps other processes of the same user from attaching (ptrace).
    static func disableCoreDumps() {
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        #if canImport(Glibc)
            _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none)
            setNotDumpable()
        #else
            _ = setrlimit(RLIMIT_CORE, &none)
        #endif
    }

    #if canImport(Glibc)
        /// `prctl(PR_SET_DUMPABLE, 0)`. Swift cannot call C's variadic `prctl`, so it is looked up and called
        /// with its five word-sized arguments, which is how glibc's variadic `prctl` reads them on Linux's
        /// calling conventions (x86-64, AArch64).
        private static func setNotDumpable() {
            typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
            guard let symbol = dlsym(nil, "prctl") else { return }  // nil is glibc's RTLD_DEFAULT
            let prctl = unsafeBitCast(symbol, to: Prctl.self)
            let setDumpable: Int32 = 4  // PR_SET_DUMPABLE, from <linux/prctl.h> (not imported into Swift)
            _ = prctl(setDumpable, 0, 0, 0, 0)
        }
    #endif
}

/// What each signal does to a running agent (Protocol/README.md, "Signals").
///
/// - SIGTERM, SIGINT, SIGHUP: stop reading, answer what is in flight, exit as at end of input. A second one
///   of them forces the exit at once, with code 128 + the signal's number, after logging the requests it
///   abandons (method names and ids only). Before the agent reads input (start-up), the first one does.
/// - SIGUSR1, SIGUSR2, SIGALRM: ignored, logged once each; they never end a refresh in flight.
/// - SIGPIPE: ignored (a vanished client shows as EPIPE on write).
///
/// These signals are blocked in every thread (the mask is set before any thread starts, and threads inherit
/// it), and one thread of their own takes them with `sigwait`: none is lost to a thread that happened to
/// have it unblocked, and none can interrupt a system call of a refresh.
enum StopSignals {
    static let stopping: [Int32] = [SIGTERM, SIGINT, SIGHUP]
    static let ignored: [Int32] = [SIGUSR1, SIGUSR2, SIGALRM]

    /// The connection the stop signals close, once there is one.
    private static let connection = Mutex<Connection?>(nil)

    /// Blocks the signals above in this thread and every thread made from here on, unblocks the rest (a
    /// parent may spawn us with signals blocked: Foundation's Process passes its thread's mask on), ignores
    /// SIGPIPE, and starts the thread that takes the signals. Call first, before any thread starts.
    static func start(logger: @escaping @Sendable () -> Logger?) {
        signal(SIGPIPE, SIG_IGN)
        var handled = sigset_t()
        sigemptyset(&handled)
        for number in stopping + ignored { sigaddset(&handled, number) }
        sigprocmask(SIG_SETMASK, &handled, nil)
        let mask = handled
        let waiter = Thread {
            var handled = mask
            var stops = 0
            var logged: Set<Int32> = []
            while true {
                var number: Int32 = 0
                guard sigwait(&handled, &number) == 0 else { continue }
                let log = logger()
                if ignored.contains(number) {
                    if logged.insert(number).inserted {
                        log?.notice("signal \(number) received; ignored (logged once)")
                    }
                    continue
                }
                stops += 1
                let open = connection.withLock { $0 }
                if stops == 1, let open {
                    log?.info("signal \(number) received; finishing in-flight requests (send it again to force)")
                    open.close()
                    continue
                }
                let abandoned = open?.inFlightRequests ?? []
                let message =
                    "signal \(number) received\(stops > 1 ? " again" : " during start-up"); forcing exit with code "
                    + "\(128 + number), abandoning "
                    + (abandoned.isEmpty ? "no request" : abandoned.joined(separator: ", "))
                if let log { log.error(message) } else { FileDescriptor.writeAll(STDERR_FILENO, message + "\n") }
                _exit(128 + number)
            }
        }
        waiter.name = "signals"
        waiter.start()
    }

    /// From now on the first stop signal closes `connection` instead of ending the process.
    static func handle(for connection: Connection) {
        Self.connection.withLock { $0 = connection }
    }
}
