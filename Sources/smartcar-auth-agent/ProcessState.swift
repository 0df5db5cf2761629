import AgentSupport
import Dispatch
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
///   abandons (method names and ids only).
/// - SIGUSR1, SIGUSR2, SIGALRM: ignored, logged once each; they never end a refresh in flight.
/// - SIGPIPE: ignored (a vanished client shows as EPIPE on write).
enum StopSignals {
    static let stopping: [Int32] = [SIGTERM, SIGINT, SIGHUP]
    static let ignored: [Int32] = [SIGUSR1, SIGUSR2, SIGALRM]

    /// Sets every signal above to be ignored by default (before any thread starts), so none of them can kill
    /// the process while the dispatch sources that handle them are being made.
    static func ignoreAll() {
        for number in stopping + ignored + [SIGPIPE] { signal(number, SIG_IGN) }
    }

    /// Handles the signals for `connection`; keep what is returned alive for the process's lifetime.
    static func install(connection: Connection, logger: Logger) -> [SignalSource] {
        let stops = Counter()
        var sources: [SignalSource] = []
        for number in stopping {
            let source = SignalSource(number)
            source.start { received in
                if stops.value.add(received, ordering: .relaxed).newValue == received {
                    logger.info("signal \(number) received; finishing in-flight requests (send it again to force)")
                    connection.close()
                    if received == 1 { return }
                }
                let abandoned = connection.inFlightRequests
                logger.error(
                    "signal \(number) received again; forcing exit with code \(128 + number), abandoning "
                        + (abandoned.isEmpty ? "no request" : abandoned.joined(separator: ", ")))
                _exit(128 + number)
            }
            sources.append(source)
        }
        for number in ignored {
            let logged = Counter()
            let source = SignalSource(number)
            source.start { _ in
                if logged.value.add(1, ordering: .relaxed).newValue == 1 {
                    logger.notice("signal \(number) received; ignored (logged once)")
                }
            }
            sources.append(source)
        }
        return sources
    }
}

/// One signal's dispatch source, behind a lock so its handler can read how many signals it stands for.
final class SignalSource: Sendable {
    private let source: Mutex<any DispatchSourceSignal>

    init(_ number: Int32) {
        source = Mutex(DispatchSource.makeSignalSource(signal: number, queue: .global()))
    }

    /// Calls `handler` with the number of signals received since the last call (signals sent in quick
    /// succession may come as one event).
    func start(_ handler: @escaping @Sendable (Int) -> Void) {
        source.withLock { source in
            source.setEventHandler { @Sendable [self] in
                handler(max(1, self.source.withLock { Int($0.data) }))
            }
            source.resume()
        }
    }
}

/// A shared count for the signal handlers (an `Atomic` cannot be captured by an escaping closure).
private final class Counter: Sendable {
    let value = Atomic(0)
}
