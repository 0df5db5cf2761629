#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Cuts a byte stream into message bodies: LSP `Content-Length` frames and newline-delimited JSON, mixed
/// freely. Pure and incremental (feed it whatever `read` returned), it never throws: bytes it cannot use are
/// reported as a `FramingProblem` and skipped, and it resynchronises on the next message.
///
/// Resynchronisation relies on one fact: `Content-Length:` followed by digits and a raw CR LF can never occur
/// inside valid JSON (a raw CR is illegal in a string, and letters cannot stand bare), so wherever it appears
/// it starts a new frame. That also recovers a body shorter than its declared length: it ends where the next
/// header starts.
struct FrameParser: Sendable {
    let maxBodyBytes: Int
    let maxHeaderBytes: Int

    /// How much of skipped bytes is kept to recover a request id from.
    private static let keptForID = 4096

    private struct HeaderBlock: Sendable {
        var contentLength: Int?
        var invalidValue: String?
        var conflicting = false
        var bytes = 0
    }

    private enum State: Sendable {
        case boundary
        /// A line message starts at `position`; `scanned` bytes of it were already searched for its end.
        case line(scanned: Int)
        case header(HeaderBlock)
        /// A body of `length` bytes starts at `position`; `scanned` bytes were already searched for a header.
        case body(length: Int, scanned: Int)
        /// Skipping exactly `remaining` more bytes of a body that is too large.
        case discardBody(remaining: Int, kept: [UInt8], kind: FramingProblem.Kind, detail: String)
        case discardLine(kept: [UInt8], detail: String)
        case discardHeader(HeaderBlock)
        /// Skipping to the next `Content-Length:` header or line that starts with `{` or `[`. `style`: the
        /// framing of what is skipped, when it is known (an error is answered in it); `atLineStart`: `position`
        /// is the start of a line that may be JSON. (Bytes right after a header block belong to that block, whose
        /// error is answered in its framing, so there it is false.)
        case resync(
            kept: [UInt8], kind: FramingProblem.Kind, detail: String, style: FramingStyle?, atLineStart: Bool = false)
    }

    private var buffer: [UInt8] = []
    private var position = 0
    private var state = State.boundary

    init(maxBodyBytes: Int = 4 << 20, maxHeaderBytes: Int = 8 << 10) {
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
    }

    /// Adds bytes and returns every event they complete.
    mutating func feed(_ bytes: some Collection<UInt8>) -> [FrameEvent] {
        buffer.append(contentsOf: bytes)
        var events: [FrameEvent] = []
        parse(into: &events)
        compact()
        return events
    }

    /// At end of input: reports a message cut off by the end (an unterminated last line is still a message).
    mutating func finish() -> [FrameEvent] {
        var events: [FrameEvent] = []
        let pending = Array(buffer[position...])
        switch state {
        case .boundary:
            break
        case .line:
            events.append(.message(pending, .newlineDelimited))
        case .header(let block):
            if block.bytes > 0 || !pending.isEmpty {
                events.append(
                    .problem(
                        .init(
                            kind: .truncatedAtEndOfInput, style: .contentLength,
                            detail: "input ended inside a header block")))
            }
        case .body(let length, _):
            events.append(
                .problem(
                    .init(
                        kind: .truncatedAtEndOfInput, recoveredID: LenientIDScanner.scan(pending),
                        style: .contentLength,
                        detail: "input ended \(pending.count) bytes into a message of \(length) bytes")))
        case .discardBody(_, let kept, let kind, let detail):
            events.append(
                .problem(
                    .init(
                        kind: kind, recoveredID: LenientIDScanner.scan(kept), style: .contentLength,
                        detail: detail + " (input ended inside it)")))
        case .discardLine(let kept, let detail):
            events.append(
                .problem(
                    .init(
                        kind: .bodyTooLarge, recoveredID: LenientIDScanner.scan(kept), style: .newlineDelimited,
                        detail: detail)))
        case .discardHeader:
            events.append(
                .problem(
                    .init(
                        kind: .headerTooLarge, style: .contentLength,
                        detail: "header block larger than \(maxHeaderBytes) bytes")))
        case .resync(let kept, let kind, let detail, let style, _):
            events.append(
                .problem(
                    .init(
                        kind: kind, recoveredID: LenientIDScanner.scan(kept + pending.prefix(Self.keptForID)),
                        style: style, detail: detail)))
        }
        buffer = []
        position = 0
        state = .boundary
        return events
    }

    // MARK: The state machine

    private mutating func parse(into events: inout [FrameEvent]) {
        while true {
            switch state {
            case .boundary:
                while position < buffer.count, Self.isWhitespace(buffer[position]) { position += 1 }
                guard position < buffer.count else { return }
                if buffer[position] == 0xEF {
                    // A UTF-8 byte order mark before a message is skipped (RFC 8259 §8.1), whatever follows.
                    guard buffer.count - position >= 3 else { return }
                    if buffer[position + 1] == 0xBB && buffer[position + 2] == 0xBF {
                        position += 3
                        continue
                    }
                }
                let first = buffer[position]
                state =
                    first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
                    ? .line(scanned: 0) : .header(HeaderBlock())

            case .line(let scanned):
                guard let newline = firstNewline(from: position + scanned) else {
                    if buffer.count - position > maxBodyBytes {
                        let kept = Array(buffer[position...].prefix(Self.keptForID))
                        position = buffer.count
                        state = .discardLine(kept: kept, detail: "a line longer than \(maxBodyBytes) bytes")
                        continue
                    }
                    state = .line(scanned: buffer.count - position)
                    return
                }
                var marker: Int?
                if case .found(let start) = findHeaderStart(from: position + 1, below: newline) { marker = start }
                var end = marker ?? newline
                if marker == nil && end > position && buffer[end - 1] == 0x0D { end -= 1 }
                if end - position > maxBodyBytes {
                    // The whole overlong line arrived in one read: skipped like one that arrives piecemeal.
                    let kept = Array(buffer[position...].prefix(Self.keptForID))
                    events.append(
                        .problem(
                            .init(
                                kind: .bodyTooLarge, recoveredID: LenientIDScanner.scan(kept), style: .newlineDelimited,
                                detail: "a line longer than \(maxBodyBytes) bytes")))
                } else {
                    events.append(.message(Array(buffer[position..<end]), .newlineDelimited))
                }
                if let marker {
                    position = marker
                    state = .header(HeaderBlock())
                    continue
                }
                position = newline + 1
                state = .boundary

            case .header(var block):
                guard let newline = firstNewline(from: position) else {
                    if block.bytes + (buffer.count - position) > maxHeaderBytes {
                        state = .discardHeader(block); continue
                    }
                    return
                }
                block.bytes += newline + 1 - position
                let line = Self.trimmedLine(buffer[position..<newline])
                if block.bytes > maxHeaderBytes {
                    position = newline + 1
                    Self.read(headerLine: line, into: &block)
                    if line.isEmpty { finishOversizedHeader(block) } else { state = .discardHeader(block) }
                    continue
                }
                if line.isEmpty {
                    position = newline + 1
                    finishHeader(block)
                    continue
                }
                if case .found(let marker) = findHeaderStart(from: position + 1, below: newline) {
                    // A header in mid-line (after the tail of a body shorter than declared): what comes before it,
                    // with the block so far, is one problem; the header starts a frame.
                    let kept = Array(buffer[position..<marker].prefix(Self.keptForID))
                    events.append(
                        .problem(
                            .init(
                                kind: .unexpectedBytes, recoveredID: LenientIDScanner.scan(kept),
                                style: .contentLength, detail: "skipped bytes before a Content-Length header")))
                    position = marker
                    state = .header(HeaderBlock())
                    continue
                }
                guard Self.isHeaderLine(line) else {
                    // Not a header (prose, a JSON line, the tail of a body shorter than declared): the block so far
                    // and the bytes up to the next message are one problem. Skipped from the line's start, so that
                    // a `Content-Length:` header later in this line, or this very line if it is JSON, is found.
                    state = .resync(
                        kept: [], kind: .unexpectedBytes, detail: "skipped bytes that are neither a header nor JSON",
                        style: block.bytes > newline + 1 - position ? .contentLength : nil, atLineStart: true)
                    continue
                }
                Self.read(headerLine: line, into: &block)
                position = newline + 1
                state = .header(block)

            case .body(let length, let scanned):
                let available = buffer.count - position
                let searchStart = position + max(0, scanned - 24)
                switch findHeaderStart(from: searchStart, below: position + min(available, length)) {
                case .found(let marker):
                    if marker == position {
                        // The next header where the body should be: this block had no body.
                        events.append(
                            .problem(
                                .init(
                                    kind: .missingBody, style: .contentLength,
                                    detail: "a header block of \(length) bytes without its body")))
                    } else {
                        events.append(.message(Array(buffer[position..<marker]), .contentLength))
                    }
                    position = marker
                    state = .header(HeaderBlock())
                case .partial:
                    state = .body(length: length, scanned: available)
                    return
                case .none:
                    guard available >= length else {
                        state = .body(length: length, scanned: available)
                        return
                    }
                    events.append(.message(Array(buffer[position..<(position + length)]), .contentLength))
                    position += length
                    state = .boundary
                }

            case .discardBody(let remaining, var kept, let kind, let detail):
                let take = min(remaining, buffer.count - position)
                if kept.count < Self.keptForID {
                    kept += buffer[position..<(position + min(take, Self.keptForID - kept.count))]
                }
                position += take
                guard take == remaining else {
                    state = .discardBody(remaining: remaining - take, kept: kept, kind: kind, detail: detail)
                    return
                }
                events.append(
                    .problem(
                        .init(
                            kind: kind, recoveredID: LenientIDScanner.scan(kept), style: .contentLength, detail: detail)
                    ))
                state = .boundary

            case .discardLine(let kept, let detail):
                guard let newline = firstNewline(from: position) else {
                    position = buffer.count
                    return
                }
                position = newline + 1
                events.append(
                    .problem(
                        .init(
                            kind: .bodyTooLarge, recoveredID: LenientIDScanner.scan(kept), style: .newlineDelimited,
                            detail: detail)))
                state = .boundary

            case .discardHeader(var block):
                guard let newline = firstNewline(from: position) else {
                    // Keep a possible partial `Content-Length` line; drop the rest.
                    if buffer.count - position > 256 { position = buffer.count - 256 }
                    return
                }
                let line = Self.trimmedLine(buffer[position..<newline])
                position = newline + 1
                Self.read(headerLine: line, into: &block)
                if line.isEmpty { finishOversizedHeader(block) } else { state = .discardHeader(block) }

            case .resync(var kept, let kind, let detail, let style, let atLineStart):
                if atLineStart {
                    let start = startsJSONLine(at: position)
                    if case .partial = start { return }
                    if case .found = start {
                        events.append(
                            .problem(
                                .init(
                                    kind: kind, recoveredID: LenientIDScanner.scan(kept), style: style,
                                    detail: detail)))
                        state = .boundary
                        continue
                    }
                }
                var index = position
                var resumeAt: Int?
                var waitFrom: Int?
                scan: while index < buffer.count {
                    switch buffer[index] {
                    case UInt8(ascii: "c"), UInt8(ascii: "C"):
                        switch matchHeaderStart(at: index) {
                        case .found: resumeAt = index; break scan
                        case .partial: waitFrom = index; break scan
                        case .none: break
                        }
                    case 0x0A:
                        switch startsJSONLine(at: index + 1) {
                        case .found: resumeAt = index + 1; break scan
                        case .partial: waitFrom = index; break scan
                        case .none: break
                        }
                    default: break
                    }
                    index += 1
                }
                let end = resumeAt ?? waitFrom ?? buffer.count
                if kept.count < Self.keptForID {
                    kept += buffer[position..<min(end, position + Self.keptForID - kept.count)]
                }
                position = end
                guard resumeAt != nil else {
                    state = .resync(kept: kept, kind: kind, detail: detail, style: style)
                    return
                }
                events.append(
                    .problem(
                        .init(kind: kind, recoveredID: LenientIDScanner.scan(kept), style: style, detail: detail)))
                state = .boundary
            }
        }
    }

    /// A complete header block: a body follows, or (without a usable length) the bytes up to the next message
    /// are skipped.
    private mutating func finishHeader(_ block: HeaderBlock) {
        if block.conflicting {
            state = .resync(
                kept: [], kind: .conflictingContentLength, detail: "conflicting Content-Length headers",
                style: .contentLength)
        } else if let value = block.invalidValue {
            state = .resync(
                kept: [], kind: .invalidContentLength, detail: "Content-Length '\(value.prefix(40))' is not a length",
                style: .contentLength)
        } else if let length = block.contentLength {
            if length > maxBodyBytes {
                state = .discardBody(
                    remaining: length, kept: [], kind: .bodyTooLarge,
                    detail: "a message of \(length) bytes exceeds the limit of \(maxBodyBytes) bytes")
            } else {
                state = .body(length: length, scanned: 0)
            }
        } else {
            state = .resync(
                kept: [], kind: .missingContentLength, detail: "a header block without Content-Length",
                style: .contentLength)
        }
    }

    private mutating func finishOversizedHeader(_ block: HeaderBlock) {
        let detail = "header block larger than \(maxHeaderBytes) bytes"
        if let length = block.contentLength, !block.conflicting, block.invalidValue == nil {
            state = .discardBody(remaining: length, kept: [], kind: .headerTooLarge, detail: detail)
        } else {
            state = .resync(kept: [], kind: .headerTooLarge, detail: detail, style: .contentLength)
        }
    }

    /// `name: value`, the name a token of RFC 9110 (letters, digits and ``!#$%&'*+-.^_`|~``), as LSP headers
    /// are. A JSON line, most prose and the tail of a JSON body never are.
    private static let tokenSymbols = Array("!#$%&'*+-.^_`|~".utf8)

    private static func isHeaderLine(_ line: ArraySlice<UInt8>) -> Bool {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return false }
        var name = line[..<colon]
        while name.last == 0x20 || name.last == 0x09 { name = name.dropLast() }  // `Name : value`, leniently
        return !name.isEmpty
            && name.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default: return tokenSymbols.contains(byte)
                }
            }
    }

    private static func read(headerLine line: ArraySlice<UInt8>, into block: inout HeaderBlock) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
        let name = String(decoding: line[..<colon], as: UTF8.self).trimmingWhitespace().lowercased()
        guard name == "content-length" else { return }
        let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingWhitespace()
        guard !value.isEmpty, value.count <= 18,
            value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let length = Int(value)
        else {
            block.invalidValue = value
            return
        }
        if let previous = block.contentLength, previous != length { block.conflicting = true }
        block.contentLength = length
    }

    // MARK: Finding a header in the middle of bytes

    private enum Match { case found(Int), partial, none }

    /// Looks for a `Content-Length: <digits>\r\n` header starting at an index in `start..<limit`.
    private func findHeaderStart(from start: Int, below limit: Int) -> Match {
        var index = start
        while index < limit {
            // Every message passes through here: the bytes are scanned without bounds checks.
            index = buffer.withUnsafeBufferPointer { bytes in
                var i = index
                while i < limit, bytes[i] | 0x20 != UInt8(ascii: "c") { i += 1 }
                return i
            }
            guard index < limit else { break }
            switch matchHeaderStart(at: index) {
            case .found: return .found(index)
            case .partial: return .partial
            case .none: index += 1
            }
        }
        return .none
    }

    /// Whether a JSON line (`{` or `[`, perhaps after a byte order mark) starts at `index`.
    private func startsJSONLine(at index: Int) -> Match {
        var i = index
        if i < buffer.count, buffer[i] == 0xEF {
            guard i + 3 < buffer.count else { return .partial }
            guard buffer[i + 1] == 0xBB, buffer[i + 2] == 0xBF else { return .none }
            i += 3
        }
        guard i < buffer.count else { return .partial }
        return buffer[i] == UInt8(ascii: "{") || buffer[i] == UInt8(ascii: "[") ? .found(index) : .none
    }

    /// The index of the first line feed at or after `start`.
    private func firstNewline(from start: Int) -> Int? {
        guard start < buffer.count else { return nil }
        return buffer.withUnsafeBufferPointer { bytes in
            memchr(bytes.baseAddress! + start, 0x0A, bytes.count - start).map {
                bytes.baseAddress!.distance(to: $0.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    private static let headerName = Array("content-length:".utf8)

    /// Whether `Content-Length:[ \t]*[0-9]+\r\n` (name case-insensitive) starts at `index`.
    private func matchHeaderStart(at index: Int) -> Match {
        var i = index
        for expected in Self.headerName {
            guard i < buffer.count else { return .partial }
            let byte = buffer[i]
            let lowered = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
            guard lowered == expected else { return .none }
            i += 1
        }
        while i < buffer.count, buffer[i] == 0x20 || buffer[i] == 0x09 { i += 1 }
        var digits = 0
        while i < buffer.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buffer[i]) { digits += 1; i += 1 }
        guard i < buffer.count else { return .partial }
        guard digits > 0, buffer[i] == 0x0D else { return .none }
        guard i + 1 < buffer.count else { return .partial }
        return buffer[i + 1] == 0x0A ? .found(index) : .none
    }

    // MARK: Helpers

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private static func trimmedLine(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        line.last == 0x0D ? line.dropLast() : line
    }

    /// Drops consumed bytes once they are a good part of the buffer, so memory stays bounded.
    private mutating func compact() {
        if position == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            position = 0
        } else if position > 65536 && position > buffer.count / 2 {
            buffer.removeFirst(position)
            position = 0
        }
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}
