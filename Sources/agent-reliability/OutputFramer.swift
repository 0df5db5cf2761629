/// Cuts the agent's stdout into messages. The agent answers in the framing of the first message it read:
/// one JSON text per line, or `Content-Length` frames; this reader takes either at every boundary and
/// reports anything else as a violation (stdout must carry nothing but protocol messages).
struct OutputFramer {
    enum Piece {
        case message([UInt8])
        case violation(String)
    }

    private var buffer: [UInt8] = []
    private var position = 0

    mutating func feed(_ bytes: ArraySlice<UInt8>) -> [Piece] {
        buffer.append(contentsOf: bytes)
        var pieces: [Piece] = []
        while let piece = nextPiece() { pieces.append(piece) }
        if position > 65536 {
            buffer.removeFirst(position)
            position = 0
        }
        return pieces
    }

    /// At end of output: whatever is left is a cut-off message.
    mutating func finish() -> [Piece] {
        let rest = buffer[position...]
        buffer = []
        position = 0
        return rest.allSatisfy({ $0 == 0x0A || $0 == 0x0D }) ? [] : [.violation("output ended inside a message: \(String(decoding: rest.prefix(200), as: UTF8.self))")]
    }

    private static let header = Array("content-length:".utf8)

    private mutating func nextPiece() -> Piece? {
        while position < buffer.count, buffer[position] == 0x0A || buffer[position] == 0x0D { position += 1 }
        guard position < buffer.count else { return nil }
        if buffer[position] == UInt8(ascii: "{") || buffer[position] == UInt8(ascii: "[") {
            guard let newline = buffer[position...].firstIndex(of: 0x0A) else { return nil }
            defer { position = newline + 1 }
            return .message(Array(buffer[position..<newline]))
        }
        // A header block: `Content-Length: N` (other headers allowed), a blank line, N bytes.
        guard let end = headerEnd() else { return nil }
        let block = String(decoding: buffer[position..<end], as: UTF8.self)
        var length: Int?
        for line in block.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" { length = Int(parts[1].trimmingCharacters(in: .whitespaces)) }
        }
        guard let length else {
            position = end + 4
            return .violation("a header block without a usable Content-Length: \(block.prefix(200))")
        }
        guard buffer.count - (end + 4) >= length else { return nil }
        defer { position = end + 4 + length }
        return .message(Array(buffer[(end + 4)..<(end + 4 + length)]))
    }

    /// Where the header block starting at `position` ends (the index of its `\r\n\r\n`).
    private func headerEnd() -> Int? {
        var index = position
        while index + 3 < buffer.count {
            if buffer[index] == 0x0D, buffer[index + 1] == 0x0A, buffer[index + 2] == 0x0D, buffer[index + 3] == 0x0A { return index }
            index += 1
        }
        return nil
    }
}
