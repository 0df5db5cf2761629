import AgentSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes whole frames to a file descriptor from any number of tasks without interleaving them.
///
/// A writer appends its frame to a shared buffer; the first one to find no write in progress becomes the
/// flusher and writes until the buffer is empty. Under load many frames leave in one `write(2)`; when idle a
/// frame leaves at once, with no thread hop.
final class OutputWriter: Sendable {
    fileprivate struct State {
        var pending: [UInt8] = []
        var flushing = false
        var broken = false
    }

    private let fd: Int32
    private let logger: Logger
    private let state = Mutex(State())
    /// Called after each chunk leaves (the input side waits while too much output is queued).
    private let wrote: @Sendable () -> Void

    init(fd: Int32, logger: Logger, wrote: @escaping @Sendable () -> Void = {}) {
        self.fd = fd
        self.logger = logger
        self.wrote = wrote
    }

    func write(_ frame: [UInt8]) {
        guard !frame.isEmpty else { return }
        var batch: [UInt8] = state.withLock { state in
            guard !state.broken else { return [] }
            guard !state.flushing else {
                state.pending += frame
                return []
            }
            // Nothing is pending while nobody flushes: this frame goes out as it is.
            state.flushing = true
            return frame
        }
        while !batch.isEmpty {
            let ok = writeAll(batch)
            batch = state.withLock { state in
                if !ok { state.broken = true; state.pending = [] }
                guard !state.pending.isEmpty else {
                    state.flushing = false
                    return []
                }
                return state.take()
            }
            wrote()
        }
    }

    /// True while bytes are waiting or being written.
    var isBusy: Bool { state.withLock { $0.flushing || !$0.pending.isEmpty } }

    /// Bytes waiting behind the write in progress.
    var queuedBytes: Int { state.withLock { $0.pending.count } }

    private func writeAll(_ bytes: [UInt8]) -> Bool {
        guard FileDescriptor.writeAll(fd, bytes) else {
            logger.warning("the client stopped reading (write failed: errno \(errno)); replies are dropped")
            return false
        }
        return true
    }
}

extension OutputWriter.State {
    fileprivate mutating func take() -> [UInt8] {
        defer { pending = [] }
        return pending
    }
}
