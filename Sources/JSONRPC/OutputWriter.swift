import AgentSupport
import Dispatch
import Synchronization

/// Writes whole frames to the output descriptor; concurrent senders never interleave.
///
/// Senders append a framed message to a buffer under a lock. The sender that finds no flush in progress
/// starts one on a serial queue (blocking `write(2)` must not run on the cooperative pool), which writes
/// until the buffer is empty: under load many frames leave in one `write`. After `EPIPE` (or any write
/// error) output is dropped and the error logged once.
final class OutputWriter: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var flushing = false
        var broken = false
        var style: FramingStyle?
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let fd: Int32
    private let logger: Logger
    private let queue = DispatchQueue(label: "jsonrpc.output")
    private let state = Mutex(State())

    init(fd: Int32, logger: Logger) {
        self.fd = fd
        self.logger = logger
    }

    /// Fixes the framing of everything sent from now on, unless already fixed (the first message wins).
    func adoptStyle(_ style: FramingStyle) {
        state.withLock { state in
            if state.style == nil { state.style = style }
        }
    }

    /// Frames `body` (Content-Length until a message fixed the style) and queues it for writing.
    func send(_ body: [UInt8]) {
        let startFlush = state.withLock { state -> Bool in
            guard !state.broken else { return false }
            switch state.style ?? .contentLength {
            case .contentLength:
                state.pending.append(contentsOf: "Content-Length: \(body.count)\r\n\r\n".utf8)
                state.pending.append(contentsOf: body)
            case .newlineDelimited:
                state.pending.append(contentsOf: body)
                state.pending.append(ASCII.lf)
            }
            guard !state.flushing else { return false }
            state.flushing = true
            return true
        }
        if startFlush { queue.async { self.flush() } }
    }

    /// Returns once everything sent so far has been written (or dropped after a write error).
    func idle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.flushing else { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func flush() {
        while true {
            let (chunk, waiters) = state.withLock { state -> ([UInt8], [CheckedContinuation<Void, Never>]) in
                if state.pending.isEmpty || state.broken {
                    state.pending = []
                    state.flushing = false
                    defer { state.idleWaiters = [] }
                    return ([], state.idleWaiters)
                }
                defer { state.pending = [] }
                return (state.pending, [])
            }
            if chunk.isEmpty {
                for waiter in waiters { waiter.resume() }
                return
            }
            if let error = POSIXIO.writeAll(fd, chunk) {
                state.withLock { $0.broken = true }
                logger.error("writing to the client failed (\(POSIXIO.describe(error))); further output is dropped")
            }
        }
    }
}
