#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Reads a file descriptor on a thread of its own with blocking `read(2)` and hands the parsed frames to async
/// code. (A blocking read must never run on the cooperative pool, which is as wide as the core count.)
enum InputReader {
    /// Starts the reading thread. It ends at end of input, or at the first read after `events` was finished.
    static func start(fd: Int32, maxBodyBytes: Int, into events: AsyncStream<FrameEvent>.Continuation) {
        let thread = Thread {
            var parser = FrameParser(maxBodyBytes: maxBodyBytes)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                for event in parser.feed(buffer[0..<n]) {
                    if case .terminated = events.yield(event) { return }
                }
            }
            for event in parser.finish() { events.yield(event) }
            events.finish()
        }
        thread.name = "jsonrpc-input"
        thread.start()
    }
}
