#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Blocking writes that finish: `write(2)` may write less than asked or be interrupted by a signal, so every
/// caller that means "all of it" goes through here instead of its own retry loop.
package enum FileDescriptor {
    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR; false when a write fails (the reader
    /// has gone, the descriptor is closed); `errno` then tells why.
    @discardableResult
    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        writeAll(bytes) { pointer, count in write(fd, pointer, count) }
    }

    @discardableResult
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    @discardableResult
    package static func writeAll(_ fd: Int32, _ text: String) -> Bool {
        writeAll(fd, Array(text.utf8))
    }

    /// The retry loop itself, for a call other than `write` with the same contract (`send` on a socket):
    /// `operation` is given what is left and answers the count written, or -1 with `errno` set.
    package static func writeAll(
        _ bytes: UnsafeRawBufferPointer,
        with operation: (UnsafeRawPointer, Int) -> Int
    ) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = operation(bytes.baseAddress! + offset, bytes.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }
}
