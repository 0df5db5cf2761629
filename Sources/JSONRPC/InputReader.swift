#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AgentSupport
import Dispatch
import Foundation
import Synchronization

/// Reads the input descriptor on a dedicated thread (a blocking `read(2)` must never occupy the cooperative
/// pool), feeds a `FrameParser`, and hands each read's events to async code through an `AsyncStream`.
///
/// Bounded: the thread is at most `readAhead` reads ahead of the consumer, who calls `acknowledge()` after
/// handling each element. `stop()` ends the stream at once; a thread blocked in `read` exits after its next
/// read returns. The thread reads from its own duplicate of the descriptor (closed when it exits), so the
/// owner may close the original at any time without the thread ever reading a reused descriptor number.
final class InputReader: Sendable {
    static let readSize = 64 << 10
    static let readAhead = 4

    private let fd: Int32
    private let maxBodyBytes: Int
    private let logger: Logger
    /// Created at 0 and topped up: libdispatch traps when a semaphore is freed below its initial value.
    private let credits = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    private let continuation = Mutex<AsyncStream<[FrameEvent]>.Continuation?>(nil)

    init(fd: Int32, maxBodyBytes: Int, logger: Logger) {
        self.fd = fd
        self.maxBodyBytes = maxBodyBytes
        self.logger = logger
        for _ in 0..<Self.readAhead { credits.signal() }
    }

    /// Starts the reading thread (unless already stopped) and returns the stream of frame events.
    func start() -> AsyncStream<[FrameEvent]> {
        let (stream, events) = AsyncStream.makeStream(of: [FrameEvent].self)
        events.onTermination = { [self] _ in
            stopped.store(true, ordering: .releasing)
            credits.signal()
        }
        let started = continuation.withLock { slot -> Bool in
            guard !stopped.load(ordering: .acquiring) else { return false }
            slot = events
            return true
        }
        guard started else {
            events.finish()
            return stream
        }
        let own = dup(fd)
        guard own >= 0 else {
            logger.error("cannot read input (dup: \(POSIXIO.describe(errno))); treating it as end of input")
            events.finish()
            return stream
        }
        let thread = Thread { [self] in
            readLoop(events, fd: own)
            close(own)
        }
        thread.name = "jsonrpc-input"
        thread.start()
        return stream
    }

    /// Lets the reader run one more read ahead of the consumer.
    func acknowledge() {
        credits.signal()
    }

    /// Ends the stream now; stops reading.
    func stop() {
        stopped.store(true, ordering: .releasing)
        continuation.withLock { $0.take() }?.finish()
    }

    private func readLoop(_ events: AsyncStream<[FrameEvent]>.Continuation, fd: Int32) {
        var parser = FrameParser(maxBodyBytes: maxBodyBytes)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readSize, alignment: 1)
        defer { buffer.deallocate() }
        while true {
            credits.wait()
            guard !stopped.load(ordering: .acquiring) else { return }
            let count = POSIXIO.readSome(fd, into: buffer)
            guard !stopped.load(ordering: .acquiring) else { return }
            if count <= 0 {
                if count < 0 { logger.error("reading input failed (\(POSIXIO.describe(Int32(-count)))); treating it as end of input") }
                let last = parser.finish()
                if !last.isEmpty { events.yield(last) }
                events.finish()
                return
            }
            let batch = parser.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            if batch.isEmpty {
                credits.signal()
                continue
            }
            if case .terminated = events.yield(batch) { return }
        }
    }
}
