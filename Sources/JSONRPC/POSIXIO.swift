#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `read(2)` / `write(2)` loops the transport needs, safe against `EINTR`, short writes and descriptors
/// that happen to be non-blocking. They block: call them only from a dedicated thread or queue.
enum POSIXIO {
    /// Reads at most `buffer.count` bytes: the count, 0 at end of input, or `-errno`.
    static func readSome(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK {
                wait(fd, for: Int16(POLLIN))
                continue
            }
            return -Int(error)
        }
    }

    /// Writes all of `bytes`; nil on success, else the `errno` that stopped it (for example `EPIPE`).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { buffer -> Int32? in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n > 0 {
                    offset += n
                    continue
                }
                let error = errno
                if n < 0, error == EINTR { continue }
                if n < 0, error == EAGAIN || error == EWOULDBLOCK {
                    wait(fd, for: Int16(POLLOUT))
                    continue
                }
                return n < 0 ? error : EIO
            }
            return nil
        }
    }

    /// A write of at most this many bytes to a pipe is atomic, and does not block when `poll` reports room.
    static let atomicWriteLimit = Int(PIPE_BUF)

    /// Whether `fd` can take a write of up to `atomicWriteLimit` bytes without blocking, right now.
    static func isWritableNow(_ fd: Int32) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&descriptor, 1, 0) == 1 && descriptor.revents & Int16(POLLOUT) != 0
    }

    private static func wait(_ fd: Int32, for events: Int16) {
        var descriptor = pollfd(fd: fd, events: events, revents: 0)
        _ = poll(&descriptor, 1, -1)
    }

    static func describe(_ error: Int32) -> String {
        String(cString: strerror(error))
    }
}
