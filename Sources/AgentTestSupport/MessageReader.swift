#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads what an agent writes to stdout from a descriptor and cuts it into messages: a line that starts with
/// `{` or `[`, or a `Content-Length` header block and its body (the agent answers each message in its own
/// framing). Anything else is junk: stdout must carry nothing but protocol messages.
///
/// Raw `read(2)` into one buffer; what it hands out are views into the buffer, valid until the next call, so
/// a timed loop copies nothing. Not thread-safe: one reader. The descriptor stays the caller's.
package final class MessageReader {
    package enum Framing: Sendable, Equatable {
        case line, contentLength
    }

    package enum Piece {
        case message(UnsafeRawBufferPointer, Framing)
        case junk(String)
    }

    private let fd: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var atEnd = false
    /// Whether the next byte `countLines` sees starts a line.
    private var atLineStart = true

    package init(fd: Int32, capacity: Int = 1 << 20) {
        self.fd = fd
        buffer = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// The next message or junk, reading as needed; nil at the end of the output (or a read error). At the
    /// end, what is left over is reported as junk: a cut-off message, or a last line without its newline.
    package func next() -> Piece? {
        while true {
            if let piece = cut() { return piece }
            if atEnd || !fill() {
                atEnd = true
                return leftover()
            }
        }
    }

    /// The next line without its newline, whatever it holds (for a process that does not speak the protocol,
    /// or a round trip that checks its reply itself); at the end, the bytes after the last newline, then nil.
    package func nextLine() -> UnsafeRawBufferPointer? {
        while true {
            if end > start, let newline = memchr(buffer.baseAddress! + start, 0x0A, end - start) {
                let length = buffer.baseAddress!.distance(to: newline) - start
                defer { start += length + 1 }
                return view(start, length)
            }
            guard fill() else {
                guard end > start else { return nil }
                defer { start = end }
                return view(start, end - start)
            }
        }
    }

    package func nextLineString() -> String? { nextLine().map { String(decoding: $0, as: UTF8.self) } }

    /// Counts the lines ending in what is buffered, or else in one `read` (blocking for at least one byte),
    /// and drops those bytes: for throughput runs, where a reply may straddle two reads. With `marker`, also
    /// counts the lines whose head (first 64 bytes) lies in this read and lacks `marker`: a check of every
    /// reply that costs a few bytes each. Answers nil at the end of the output.
    package func countLines(marker: [UInt8]?) -> (lines: Int, unmatched: Int)? {
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
                if !Self.contains(head, marker) { unmatched += 1 }
            }
            lines += 1
            position = newline + 1
            atLineStart = true
        }
        start = 0
        end = 0
        return (lines, unmatched)
    }

    /// Whether `needle` occurs in `haystack`.
    package static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count, let first = needle.first else { return needle.isEmpty }
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var matched = 1
                while matched < needle.count && haystack[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return true }
            }
            index += 1
        }
        return false
    }

    // MARK: Framing

    /// The next complete piece in the buffer, nil when more bytes are needed.
    private func cut() -> Piece? {
        while start < end, byte(start) == 0x0A || byte(start) == 0x0D || byte(start) == 0x20 { start += 1 }
        guard start < end else { return nil }
        if byte(start) == UInt8(ascii: "{") || byte(start) == UInt8(ascii: "[") {
            guard let newline = memchr(buffer.baseAddress! + start, 0x0A, end - start) else { return nil }
            let from = start
            var length = buffer.baseAddress!.distance(to: newline) - from
            start = from + length + 1
            if length > 0 && byte(from + length - 1) == 0x0D { length -= 1 }
            return .message(view(from, length), .line)
        }
        guard let headerEnd = find([0x0D, 0x0A, 0x0D, 0x0A]) else {
            // Not a message start: junk, once its first line is complete and does not read `Name: value\r`.
            guard let newline = memchr(buffer.baseAddress! + start, 0x0A, end - start) else { return nil }
            let length = buffer.baseAddress!.distance(to: newline) - start
            guard !isHeaderField(start, length) || end - start > 8192 else { return nil }
            defer { start += length + 1 }
            return .junk("a line that is neither a JSON message nor a header: \(text(start, length))")
        }
        let header = text(start, headerEnd - start)
        var contentLength: Int?
        for field in header.split(separator: "\r\n") {
            let parts = field.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                contentLength = Int(parts[1].drop { $0 == " " || $0 == "\t" }.prefix { $0 != " " && $0 != "\t" })
            }
        }
        guard let contentLength, contentLength >= 0 else {
            start = headerEnd + 4
            return .junk("a header block without a valid Content-Length: \(header)")
        }
        guard end - (headerEnd + 4) >= contentLength else { return nil }
        start = headerEnd + 4 + contentLength
        return .message(view(headerEnd + 4, contentLength), .contentLength)
    }

    /// At the end of the output: what is left is a cut-off message, or junk.
    private func leftover() -> Piece? {
        while start < end, byte(start) == 0x0A || byte(start) == 0x0D || byte(start) == 0x20 { start += 1 }
        guard start < end else { return nil }
        let rest = text(start, min(200, end - start))
        let first = byte(start)
        start = end
        if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            return .junk("a message without its final newline: \(rest)")
        }
        return .junk("cut-off output: \(rest)")
    }

    /// `Name: value` ending in CR, as in an LSP header block.
    private func isHeaderField(_ from: Int, _ length: Int) -> Bool {
        guard length > 0, byte(from + length - 1) == 0x0D else { return false }
        var index = from
        while index < from + length, byte(index) != UInt8(ascii: ":") {
            let c = byte(index)
            guard (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "-") else { return false }
            index += 1
        }
        return index > from && index < from + length
    }

    private func find(_ needle: [UInt8]) -> Int? {
        var index = start
        while index + needle.count <= end {
            if (0..<needle.count).allSatisfy({ byte(index + $0) == needle[$0] }) { return index }
            index += 1
        }
        return nil
    }

    private func byte(_ index: Int) -> UInt8 { buffer[index] }

    private func view(_ from: Int, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: buffer.baseAddress! + from, count: count)
    }

    private func text(_ from: Int, _ count: Int) -> String { String(decoding: view(from, count), as: UTF8.self) }

    /// Appends one `read` to the buffer, compacting (or growing) it first when full; false at the end.
    private func fill() -> Bool {
        if start == end {
            start = 0
            end = 0
        } else if end == buffer.count {
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
