import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a file descriptor on a thread of its own with blocking `read(2)` (which must never run on the
/// cooperative pool, as wide as the core count), cuts the bytes into frames and hands the events of each
/// read to `deliver` on that same thread, so a request that can be answered at once costs no thread hop.
///
/// The next read happens once `deliver` returns and `gate` lets it: the thread is the back-pressure.
/// `stop()` ends the input: nothing more is delivered, and `ended` runs at once when the thread is
/// blocked in `read` (it exits when that read returns), else as soon as the current delivery is over.
final class InputReader: Sendable {
    private struct State {
        var stopped = false
        /// In `read(2)`: `stop()` cannot wait for the thread.
        var blocked = false
        var ended: (@Sendable () -> Void)?
    }

    private let fd: Int32
    private let maxBodyBytes: Int
    private let gate: InputGate
    private let state = Mutex(State())
    private let stoppedFlag = Atomic(false)

    init(fd: Int32, maxBodyBytes: Int, gate: InputGate) {
        self.fd = fd
        self.maxBodyBytes = maxBodyBytes
        self.gate = gate
    }

    /// True once `stop()` was called; checked between the messages of one read.
    var isStopped: Bool { stoppedFlag.load(ordering: .acquiring) }

    /// Starts the thread (or, when already stopped, just calls `ended`). `ended` runs exactly once.
    /// `mustWait` is asked before each read; `gate` holds the thread while it is true.
    func start(
        mustWait: @escaping @Sendable () -> Bool, deliver: @escaping @Sendable ([FrameEvent]) -> Void,
        ended: @escaping @Sendable () -> Void
    ) {
        let stopped = state.withLock { state in
            state.ended = ended
            return state.stopped
        }
        if stopped { return finish() }
        let thread = Thread { [self] in
            readLoop(mustWait: mustWait, deliver: deliver)
            finish()
        }
        thread.name = "jsonrpc-input"
        thread.start()
    }

    func stop() {
        stoppedFlag.store(true, ordering: .releasing)
        let endNow = state.withLock { state in
            state.stopped = true
            return state.blocked
        }
        if endNow { finish() }
        gate.mayHaveOpened()
    }

    private func finish() {
        state.withLock { $0.ended.take() }?()
    }

    private func readLoop(mustWait: @Sendable () -> Bool, deliver: @Sendable ([FrameEvent]) -> Void) {
        var parser = FrameParser(maxBodyBytes: maxBodyBytes)
        // Typed, so the parser copies each read with one memcpy (a raw buffer is copied byte by byte).
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 64 << 10)
        defer { buffer.deallocate() }
        while true {
            gate.wait { !isStopped && mustWait() }
            let go = state.withLock { state in
                state.blocked = !state.stopped
                return state.blocked
            }
            guard go else { return }
            var count = read(fd, buffer.baseAddress!, buffer.count)
            while count < 0 && errno == EINTR { count = read(fd, buffer.baseAddress!, buffer.count) }
            let stopped = state.withLock { state in
                state.blocked = false
                return state.stopped
            }
            // Stopped while blocked: `ended` already ran, and nothing read now may be delivered.
            if stopped { return }
            guard count > 0 else {
                let last = parser.finish()
                if !last.isEmpty { deliver(last) }
                return
            }
            let events = parser.feed(UnsafeBufferPointer(rebasing: buffer[0..<count]))
            if !events.isEmpty { deliver(events) }
        }
    }
}

/// Back-pressure on input: the reading thread waits here, before reading more, while too much is
/// outstanding (requests in flight, output queued), so a client flooding the agent cannot make it buffer
/// without bound; the client's own writes then block, as with any pipe.
///
/// Whoever may have made room calls `mayHaveOpened()`; it wakes the reader only when it is waiting. The
/// check of the condition and the decision to sleep happen under one lock that `mayHaveOpened()` also
/// takes, so a wake-up cannot fall between them.
final class InputGate: Sendable {
    private let waiting = Mutex(false)
    private let wakeUp = DispatchSemaphore(value: 0)

    /// Blocks (a dedicated thread only, never the cooperative pool) until `blocked()` is false.
    func wait(while blocked: () -> Bool) {
        while true {
            let mustWait = waiting.withLock { waiting in
                waiting = blocked()
                return waiting
            }
            guard mustWait else { return }
            wakeUp.wait()
        }
    }

    func mayHaveOpened() {
        let wake = waiting.withLock { waiting in
            defer { waiting = false }
            return waiting
        }
        if wake { wakeUp.signal() }
    }
}
