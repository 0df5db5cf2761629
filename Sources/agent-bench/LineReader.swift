#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads newline-terminated replies from a descriptor with raw `read(2)` into one buffer. Lines handed out
/// are views into the buffer, valid until the next call. Not thread-safe: one reader.
final class LineReader {
    let fd: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// Whether the next byte `countLines` sees starts a line.
    private var atLineStart = true

    init(fd: Int32, capacity: Int = 4 << 20) {
        self.fd = fd
        buffer = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// The next line without its newline, nil at end of input (or a read error).
    func nextLine() -> UnsafeRawBufferPointer? {
        while true {
            if end > start, let newline = memchr(buffer.baseAddress! + start, 0x0A, end - start) {
                let length = buffer.baseAddress!.distance(to: newline) - start
                let line = UnsafeRawBufferPointer(start: buffer.baseAddress! + start, count: length)
                start += length + 1
                return line
            }
            guard fill() else { return remainder() }
        }
    }

    /// At end of input, the bytes after the last newline as a final line (nil when there are none).
    private func remainder() -> UnsafeRawBufferPointer? {
        guard end > start else { return nil }
        let line = UnsafeRawBufferPointer(start: buffer.baseAddress! + start, count: end - start)
        start = end
        return line
    }

    func nextLineString() -> String? {
        nextLine().map { String(decoding: $0, as: UTF8.self) }
    }

    /// Counts the lines ending in what is buffered, or else in one `read` (blocking for at least one byte),
    /// and drops those bytes: for throughput runs, where a reply may straddle two reads. With `marker`, also
    /// counts the lines whose head (first 64 bytes) lies in this read and lacks `marker`: a check of every
    /// reply that costs a few bytes each. Answers nil at end of input.
    func countLines(marker: [UInt8]?) -> (lines: Int, unmatched: Int)? {
        if start == end {
            start = 0
            end = 0
            guard fill() else { return nil }
        }
        var lines = 0, unmatched = 0
        var position = buffer.baseAddress! + start
        let stop = buffer.baseAddress! + end
        while position < stop {
            guard let newline = memchr(position, 0x0A, position.distance(to: stop)) else {
                atLineStart = false
                break
            }
            if let marker, atLineStart {
                let head = UnsafeRawBufferPointer(start: position, count: min(64, position.distance(to: newline)))
                if !Replies.contains(head, marker) { unmatched += 1 }
            }
            lines += 1
            position = newline + 1
            atLineStart = true
        }
        start = 0
        end = 0
        return (lines, unmatched)
    }

    /// Appends one `read` to the buffer, compacting (or growing) it first when full.
    private func fill() -> Bool {
        if end == buffer.count {
            if start > 0 {
                let kept = end - start
                memmove(buffer.baseAddress!, buffer.baseAddress! + start, kept)
                start = 0
                end = kept
            } else {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                bigger.copyMemory(from: UnsafeRawBufferPointer(buffer))
                buffer.deallocate()
                buffer = bigger
            }
        } else if start == end {
            start = 0
            end = 0
        }
        while true {
            let count = read(fd, buffer.baseAddress! + end, buffer.count - end)
            if count > 0 {
                end += count
                return true
            }
            if count < 0 && errno == EINTR { continue }
            return false
        }
    }
}
