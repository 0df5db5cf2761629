#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AgentSupport
import Foundation
import Synchronization

/// Reads the input descriptor on a dedicated thread (a blocking `read(2)` must never occupy the cooperative
/// pool), feeds a `FrameParser`, and hands each read's events to `deliver` on that same thread.
///
/// `deliver` starts the work for each message (handlers begin inline, see `Connection`), so the next read
/// happens only once the previous one has been dispatched: the thread is its own back-pressure, and a
/// quick request is answered without any thread hop. `stop()` ends the input at once; a thread blocked in
/// `read` exits after that read returns. The thread reads from its own duplicate of the descriptor (closed
/// when it exits), so the owner may close the original at any time without the thread ever reading a
/// reused descriptor number.
final class InputReader: Sendable {
    static let readSize = 64 << 10

    private let fd: Int32
    private let maxBodyBytes: Int
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    /// Called once, at end of input or on `stop()`, whichever comes first.
    private let ended = Mutex<(@Sendable () -> Void)?>(nil)

    init(fd: Int32, maxBodyBytes: Int, logger: Logger) {
        self.fd = fd
        self.maxBodyBytes = maxBodyBytes
        self.logger = logger
    }

    /// Starts the reading thread (unless already stopped). `ended` runs exactly once.
    func start(deliver: @escaping @Sendable ([FrameEvent]) -> Void, ended: @escaping @Sendable () -> Void) {
        let running = self.ended.withLock { slot -> Bool in
            guard !stopped.load(ordering: .acquiring) else { return false }
            slot = ended
            return true
        }
        guard running else {
            ended()
            return
        }
        let own = dup(fd)
        guard own >= 0 else {
            logger.error("cannot read input (dup: \(POSIXIO.describe(errno))); treating it as end of input")
            finish()
            return
        }
        let thread = Thread { [self] in
            readLoop(fd: own, deliver: deliver)
            close(own)
            finish()
        }
        thread.name = "jsonrpc-input"
        thread.start()
    }

    /// Ends the input now; the thread delivers nothing more.
    func stop() {
        stopped.store(true, ordering: .releasing)
        finish()
    }

    private func finish() {
        ended.withLock { $0.take() }?()
    }

    private func readLoop(fd: Int32, deliver: @Sendable ([FrameEvent]) -> Void) {
        var parser = FrameParser(maxBodyBytes: maxBodyBytes)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readSize, alignment: 1)
        defer { buffer.deallocate() }
        while !stopped.load(ordering: .acquiring) {
            let count = POSIXIO.readSome(fd, into: buffer)
            guard !stopped.load(ordering: .acquiring) else { return }
            if count <= 0 {
                if count < 0 { logger.error("reading input failed (\(POSIXIO.describe(Int32(-count)))); treating it as end of input") }
                let last = parser.finish()
                if !last.isEmpty { deliver(last) }
                return
            }
            let events = parser.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            if !events.isEmpty { deliver(events) }
        }
    }
}
