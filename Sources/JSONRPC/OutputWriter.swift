import AgentSupport
import Dispatch
import Synchronization

/// Writes whole frames to the output descriptor; concurrent senders never interleave.
///
/// Senders append a framed message to a buffer under a lock; the sender that finds no flush in progress
/// becomes the flusher, which writes until the buffer is empty, so under load many frames leave in one
/// `write`. The flusher writes inline only while that cannot block (at most `PIPE_BUF` bytes, and `poll`
/// says the descriptor is writable): the common small answer then costs no thread hop. Anything else is
/// handed to a serial queue, since a blocking `write(2)` must not occupy the cooperative pool. After
/// `EPIPE` (or any write error) output is dropped and the error logged once. While the input side holds
/// the output (`hold` / `release`, around the messages of one read), answers produced meanwhile are only
/// appended, then leave together.
final class OutputWriter: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var flushing = false
        var held = false
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
        let becameFlusher = state.withLock { state -> Bool in
            guard !state.broken else { return false }
            switch state.style ?? .contentLength {
            case .contentLength:
                state.pending.append(contentsOf: "Content-Length: \(body.count)\r\n\r\n".utf8)
                state.pending.append(contentsOf: body)
            case .newlineDelimited:
                state.pending.append(contentsOf: body)
                state.pending.append(ASCII.lf)
            }
            guard !state.flushing, !state.held || state.pending.count >= Self.holdLimit else { return false }
            state.flushing = true
            return true
        }
        if becameFlusher { flushInline() }
    }

    /// Output held back beyond this size is written anyway.
    private static let holdLimit = 64 << 10

    /// Defers writing until `release()`, so answers produced together leave in one `write`.
    func hold() {
        state.withLock { $0.held = true }
    }

    /// Writes whatever was held back.
    func release() {
        let becameFlusher = state.withLock { state -> Bool in
            state.held = false
            guard !state.flushing, !state.pending.isEmpty else { return false }
            state.flushing = true
            return true
        }
        if becameFlusher { flushInline() }
    }

    /// Writes small pending output on the caller's thread while that cannot block; hands the rest to `queue`.
    private func flushInline() {
        while true {
            let next = state.withLock { state -> (chunk: [UInt8], waiters: [CheckedContinuation<Void, Never>])? in
                if state.pending.isEmpty || state.broken { return ([], stopFlushing(&state)) }
                guard state.pending.count <= POSIXIO.atomicWriteLimit else { return nil }
                defer { state.pending = [] }
                return (state.pending, [])
            }
            guard let next else {
                queue.async { self.flush() }
                return
            }
            if next.chunk.isEmpty {
                for waiter in next.waiters { waiter.resume() }
                return
            }
            guard POSIXIO.isWritableNow(fd) else {
                state.withLock { $0.pending.insert(contentsOf: next.chunk, at: 0) }
                queue.async { self.flush() }
                return
            }
            write(next.chunk)
        }
    }

    private func stopFlushing(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        state.pending = []
        state.flushing = false
        defer { state.idleWaiters = [] }
        return state.idleWaiters
    }

    private func write(_ chunk: [UInt8]) {
        if let error = POSIXIO.writeAll(fd, chunk) {
            state.withLock { $0.broken = true }
            logger.error("writing to the client failed (\(POSIXIO.describe(error))); further output is dropped")
        }
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

    /// The flusher on `queue`: may block in `write`.
    private func flush() {
        while true {
            let (chunk, waiters) = state.withLock { state -> ([UInt8], [CheckedContinuation<Void, Never>]) in
                if state.pending.isEmpty || state.broken { return ([], stopFlushing(&state)) }
                defer { state.pending = [] }
                return (state.pending, [])
            }
            if chunk.isEmpty {
                for waiter in waiters { waiter.resume() }
                return
            }
            write(chunk)
        }
    }
}
