/// Cuts what an agent writes to stdout into messages, noting the framing of each: a line that starts with
/// `{` or `[`, or a `Content-Length` header block and its body. Anything else is junk: the agent broke the
/// rule that stdout carries only protocol messages. (The harness has its own reader so that it checks an
/// implementation instead of sharing its code.)
struct OutputFramer {
    enum Frame {
        case message([UInt8], Transcript.Framing)
        case junk(String)
    }

    private var buffer: [UInt8] = []

    mutating func feed(_ bytes: some Collection<UInt8>) -> [Frame] {
        buffer.append(contentsOf: bytes)
        var frames: [Frame] = []
        while let frame = next() { frames.append(frame) }
        return frames
    }

    /// At end of output: whatever is left is a cut-off message, or junk.
    mutating func finish() -> [Frame] {
        var frames: [Frame] = []
        while let frame = next() { frames.append(frame) }
        let rest = buffer.drop { $0 == 0x0A || $0 == 0x0D || $0 == 0x20 }
        if !rest.isEmpty {
            if rest.first == UInt8(ascii: "{") || rest.first == UInt8(ascii: "[") {
                frames.append(.junk("a message without its final newline: \(String(decoding: rest.prefix(200), as: UTF8.self))"))
            } else {
                frames.append(.junk("cut-off output: \(String(decoding: rest.prefix(200), as: UTF8.self))"))
            }
        }
        buffer = []
        return frames
    }

    private mutating func next() -> Frame? {
        let start = buffer.firstIndex { $0 != 0x0A && $0 != 0x0D && $0 != 0x20 } ?? buffer.count
        if start > 0 { buffer.removeFirst(start) }
        guard let first = buffer.first else { return nil }
        if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            guard let end = buffer.firstIndex(of: 0x0A) else { return nil }
            var body = Array(buffer[..<end])
            if body.last == 0x0D { body.removeLast() }
            buffer.removeFirst(end + 1)
            return .message(body, .line)
        }
        guard let headerEnd = find([0x0D, 0x0A, 0x0D, 0x0A]) else {
            // Not a message start: junk, once its first line is complete and does not read `Name: value\r`.
            if let lineEnd = buffer.firstIndex(of: 0x0A), !Self.isHeaderField(buffer[..<lineEnd]) || buffer.count > 8192 {
                let line = String(decoding: buffer[..<lineEnd], as: UTF8.self)
                buffer.removeFirst(lineEnd + 1)
                return .junk("a line that is neither a JSON message nor a header: \(line)")
            }
            return nil
        }
        let header = String(decoding: buffer[..<headerEnd], as: UTF8.self)
        var length: Int?
        for field in header.split(separator: "\r\n") {
            let parts = field.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                length = Int(parts[1].trimmingCharacters(in: [" ", "\t"]))
            }
        }
        guard let length, length >= 0 else {
            buffer.removeFirst(headerEnd + 4)
            return .junk("a header block without a valid Content-Length: \(header)")
        }
        guard buffer.count >= headerEnd + 4 + length else { return nil }
        let body = Array(buffer[(headerEnd + 4)..<(headerEnd + 4 + length)])
        buffer.removeFirst(headerEnd + 4 + length)
        return .message(body, .contentLength)
    }

    /// `Name: value` ending in CR, as in an LSP header block.
    private static func isHeaderField(_ line: ArraySlice<UInt8>) -> Bool {
        guard line.last == 0x0D, let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else { return false }
        return line[..<colon].allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == UInt8(ascii: "-") }
    }

    private func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        for index in 0...(buffer.count - needle.count) where buffer[index] == needle[0] {
            if Array(buffer[index..<index + needle.count]) == needle { return index }
        }
        return nil
    }
}
