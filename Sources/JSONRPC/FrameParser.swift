/// Incremental, byte-level frame parser for the LSP base protocol and newline-delimited JSON (pure, no I/O).
///
/// Feed it whatever `read(2)` returned. At a message boundary whitespace is skipped; a `{` or `[` starts a
/// one-line (NDJSON) message, anything else a header block. Malformed input is reported as a
/// `FramingProblem` and skipped without buffering more than a bounded amount, and parsing resynchronises on
/// the next `Content-Length:` header line (which cannot occur inside valid JSON) or on a `{` / `[` at the
/// start of a line. A body that contains such a header line is cut right before it, so a message that
/// follows a body shorter than declared is still recovered.
public struct FrameParser: Sendable {
    public let maxBodyBytes: Int
    public let maxHeaderBytes: Int

    /// How much of a skipped message is kept to recover its id.
    static let idPrefixBytes = 4 << 10

    private var buffer: [UInt8] = []
    /// The first byte of `buffer` not yet consumed; offsets kept in `state` are relative to it.
    private var position = 0
    private var state = State.boundary

    private enum State {
        case boundary
        /// An NDJSON line starting at `position`; `scanned` bytes hold no newline.
        case line(scanned: Int)
        case header(HeaderBlock)
        /// A body of `length` bytes starting at `position`; no marker starts before `markerFrom`.
        case body(length: Int, markerFrom: Int)
        case skip(Skip)
    }

    private struct Skip {
        enum Until {
            case count(Int)
            case newline
            case resync(atLineStart: Bool)
        }
        var until: Until
        var kind: FramingProblem.Kind
        var detail: String
        var prefix: [UInt8] = []
        var reported = false
    }

    /// - Parameters:
    ///   - maxBodyBytes: larger bodies (and NDJSON lines) are skipped and reported, never buffered.
    ///   - maxHeaderBytes: larger header blocks are skipped and reported.
    public init(maxBodyBytes: Int = 4 << 20, maxHeaderBytes: Int = 8 << 10) {
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
    }

    /// Bytes held while waiting for the rest of a message (bounded by the limits; for monitoring and tests).
    public var bufferedByteCount: Int { buffer.count - position }

    /// Consumes `bytes` and returns every message completed and every problem detected, in stream order.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [FrameEvent] {
        buffer.append(contentsOf: bytes)
        var events: [FrameEvent] = []
        while step(&events, atEnd: false) {}
        if position > 0 {
            buffer.removeFirst(position)
            position = 0
        }
        return events
    }

    /// Call at end of input: reports a truncated final message (silent when the stream ended cleanly) and
    /// resets the parser. An unterminated final NDJSON line is delivered as a message.
    public mutating func finish() -> [FrameEvent] {
        var events: [FrameEvent] = []
        while step(&events, atEnd: true) {}
        switch state {
        case .boundary, .line:
            break
        case .header:
            events.append(.problem(.init(kind: .truncatedAtEndOfInput, detail: "input ended inside a header block")))
        case .body(let length, _):
            let received = buffer[position...]
            events.append(.problem(.init(
                kind: .truncatedAtEndOfInput, recoveredID: LenientIDScanner.scan(received),
                detail: "input ended after \(received.count) of \(length) body bytes")))
        case .skip(let skip):
            if !skip.reported { events.append(.problem(.init(kind: skip.kind, detail: skip.detail))) }
        }
        buffer = []
        position = 0
        state = .boundary
        return events
    }

    // MARK: - States

    /// Advances by one state transition; false when more input is needed.
    private mutating func step(_ events: inout [FrameEvent], atEnd: Bool) -> Bool {
        switch state {
        case .boundary: return stepBoundary(atEnd: atEnd)
        case .line(let scanned): return stepLine(scanned: scanned, &events, atEnd: atEnd)
        case .header(let block): return stepHeader(block, &events)
        case .body(let length, let markerFrom): return stepBody(length: length, markerFrom: markerFrom, &events, atEnd: atEnd)
        case .skip(let skip): return stepSkip(skip, &events, atEnd: atEnd)
        }
    }

    private mutating func stepBoundary(atEnd: Bool) -> Bool {
        while position < buffer.count {
            if ASCII.isWhitespace(buffer[position]) {
                position += 1
            } else if buffer[position] == ASCII.byteOrderMark[0] {
                // A byte order mark (as PowerShell pipes write) is skipped like whitespace.
                let available = buffer[position...].prefix(ASCII.byteOrderMark.count)
                guard available.elementsEqual(ASCII.byteOrderMark.prefix(available.count)) else { break }
                guard available.count == ASCII.byteOrderMark.count else { return atEnd ? startHeader() : false }
                position += ASCII.byteOrderMark.count
            } else {
                break
            }
        }
        guard position < buffer.count else { return false }
        if ASCII.isOpening(buffer[position]) {
            state = .line(scanned: 0)
            return true
        }
        return startHeader()
    }

    private mutating func startHeader() -> Bool {
        state = .header(HeaderBlock())
        return true
    }

    private mutating func stepLine(scanned: Int, _ events: inout [FrameEvent], atEnd: Bool) -> Bool {
        let end = buffer.count
        if let newline = buffer.firstIndex(of: ASCII.lf, from: position + scanned, to: end) {
            // A Content-Length header glued to the end of the line starts the next message.
            if case .found(let marker) = ContentLengthMarker.find(in: buffer, from: position, startLimit: newline, end: newline + 1) {
                emitLine(upTo: marker, &events)
                position = marker
            } else {
                emitLine(upTo: newline, &events)
                position = newline + 1
            }
            state = .boundary
            return true
        }
        if atEnd {
            emitLine(upTo: end, &events)
            position = end
            state = .boundary
            return false
        }
        if end - position > maxBodyBytes {
            state = .skip(Skip(until: .newline, kind: .bodyTooLarge, detail: "line exceeds the limit of \(maxBodyBytes) bytes"))
            return true
        }
        state = .line(scanned: end - position)
        return false
    }

    private func emitLine(upTo end: Int, _ events: inout [FrameEvent]) {
        var lineEnd = end
        if lineEnd > position, buffer[lineEnd - 1] == ASCII.cr { lineEnd -= 1 }
        let line = buffer[position..<lineEnd]
        if line.count > maxBodyBytes {
            events.append(.problem(.init(
                kind: .bodyTooLarge, recoveredID: LenientIDScanner.scan(line.prefix(Self.idPrefixBytes)),
                detail: "line exceeds the limit of \(maxBodyBytes) bytes")))
        } else {
            events.append(.message(Array(line), .newlineDelimited))
        }
    }

    private mutating func stepHeader(_ initial: HeaderBlock, _ events: inout [FrameEvent]) -> Bool {
        var block = initial
        let end = buffer.count
        if block.discardingLine { return stepDiscardingHeaderLine(block, &events) }
        guard let newline = buffer.firstIndex(of: ASCII.lf, from: position + block.lineScanned, to: end) else {
            let pending = end - position
            if pending <= maxHeaderBytes {
                block.lineScanned = pending
                state = .header(block)
                return false
            }
            if case .notAHeader = HeaderBlock.parse(buffer[position..<end], nameOnly: true) {
                // A long run of bytes that is no header line at all: resynchronise through it.
                resync(atLineStart: true, kind: junkKind(block, lineBytes: pending))
                return true
            }
            // Too long to buffer: drop the rest of this line, keep reading the following header lines.
            block.lineScanned = 0
            block.discardingLine = true
            state = .header(block)
            return true
        }
        block.lineScanned = 0
        // A Content-Length header glued to the end of a line starts the next message.
        if case .found(let marker) = ContentLengthMarker.find(in: buffer, from: position + 1, startLimit: newline, end: newline + 1) {
            let kind = junkKind(block, lineBytes: marker - position)
            events.append(.problem(.init(kind: kind, detail: detail(for: kind))))
            position = marker
            state = .boundary
            return true
        }
        var lineEnd = newline
        if lineEnd > position, buffer[lineEnd - 1] == ASCII.cr { lineEnd -= 1 }
        if lineEnd == position {
            block.size += newline + 1 - position
            position = newline + 1
            endHeaderBlock(block)
            return true
        }
        // A line too long to have been buffered in pieces is checked the way `stepDiscardingHeaderLine` does.
        let line = HeaderBlock.parse(buffer[position..<lineEnd], nameOnly: lineEnd - position > maxHeaderBytes)
        if case .notAHeader = line {
            // Not a header block after all: resynchronise from the start of this line.
            resync(atLineStart: true, kind: junkKind(block, lineBytes: newline + 1 - position))
            return true
        }
        block.note(line)
        block.lines += 1
        block.size += newline + 1 - position
        position = newline + 1
        if block.size > maxHeaderBytes * 8 {
            resync(atLineStart: true, kind: .headerTooLarge)
            return true
        }
        state = .header(block)
        return true
    }

    /// Skips the rest of an over-long header line without buffering it (still honouring the marker).
    private mutating func stepDiscardingHeaderLine(_ initial: HeaderBlock, _ events: inout [FrameEvent]) -> Bool {
        var block = initial
        let end = buffer.count
        guard position < end else { return false }
        let newline = buffer.firstIndex(of: ASCII.lf, from: position, to: end)
        let limit = newline.map { $0 + 1 } ?? end
        switch ContentLengthMarker.find(in: buffer, from: position, startLimit: limit, end: end) {
        case .found(let marker):
            let kind = junkKind(block, lineBytes: marker - position)
            events.append(.problem(.init(kind: kind, detail: detail(for: kind))))
            position = marker
            state = .boundary
            return true
        case .partial(let marker):
            block.size += marker - position
            position = marker
            state = .header(block)
            return false
        case .none:
            block.size += limit - position
            position = limit
            block.discardingLine = newline == nil
            if newline != nil { block.lines += 1 }
            if block.size > maxHeaderBytes * 8 {
                resync(atLineStart: newline != nil, kind: .headerTooLarge)
                return true
            }
            state = .header(block)
            return newline != nil
        }
    }

    /// What to call bytes that turned out not to be a header line: part of an oversized block when earlier
    /// lines plus these exceed the limit, plain junk otherwise.
    private func junkKind(_ block: HeaderBlock, lineBytes: Int) -> FramingProblem.Kind {
        block.lines > 0 && block.size + lineBytes > maxHeaderBytes ? .headerTooLarge : .unexpectedBytes
    }

    private func detail(for kind: FramingProblem.Kind) -> String {
        kind == .headerTooLarge ? "header block exceeds \(maxHeaderBytes) bytes" : "unexpected bytes where a header line was expected"
    }

    private mutating func resync(atLineStart: Bool, kind: FramingProblem.Kind) {
        state = .skip(Skip(until: .resync(atLineStart: atLineStart), kind: kind, detail: detail(for: kind)))
    }

    private mutating func endHeaderBlock(_ block: HeaderBlock) {
        if block.size > maxHeaderBytes {
            let detail = "header block of \(block.size) bytes exceeds \(maxHeaderBytes) bytes"
            if block.failure == nil, let length = block.contentLength {
                state = .skip(Skip(until: .count(length), kind: .headerTooLarge, detail: detail))
            } else {
                state = .skip(Skip(until: .resync(atLineStart: false), kind: .headerTooLarge, detail: detail))
            }
        } else if let failure = block.failure {
            state = .skip(Skip(until: .resync(atLineStart: false), kind: failure.kind, detail: failure.detail))
        } else if let length = block.contentLength {
            if length > maxBodyBytes {
                state = .skip(Skip(until: .count(length), kind: .bodyTooLarge,
                                   detail: "message of \(length) bytes exceeds the limit of \(maxBodyBytes) bytes"))
            } else {
                state = .body(length: length, markerFrom: 0)
            }
        } else {
            state = .skip(Skip(until: .resync(atLineStart: false), kind: .missingContentLength,
                               detail: "header block without Content-Length"))
        }
    }

    private mutating func stepBody(length: Int, markerFrom: Int, _ events: inout [FrameEvent], atEnd: Bool) -> Bool {
        let end = buffer.count
        let available = end - position
        let startLimit = position + min(available, length)
        switch ContentLengthMarker.find(in: buffer, from: position + markerFrom, startLimit: startLimit, end: end) {
        case .found(let marker):
            // Body shorter than declared: a new message starts here.
            events.append(.message(Array(buffer[position..<marker]), .contentLength))
            position = marker
            state = .boundary
            return true
        case .partial(let marker) where !atEnd:
            state = .body(length: length, markerFrom: marker - position)
            return false
        case .partial, .none:
            if available >= length {
                events.append(.message(Array(buffer[position..<position + length]), .contentLength))
                position += length
                state = .boundary
                return true
            }
            state = .body(length: length, markerFrom: startLimit - position)
            return false
        }
    }

    private mutating func stepSkip(_ initial: Skip, _ events: inout [FrameEvent], atEnd: Bool) -> Bool {
        var skip = initial
        let end = buffer.count
        if case .count(0) = skip.until {
            finishSkip(skip, &events)
            return true
        }
        guard position < end else { return false }
        let limit: Int
        let terminates: Bool
        switch skip.until {
        case .count(let remaining):
            limit = position + min(remaining, end - position)
            terminates = limit - position == remaining
        case .newline:
            let newline = buffer.firstIndex(of: ASCII.lf, from: position, to: end)
            limit = newline.map { $0 + 1 } ?? end
            terminates = newline != nil
        case .resync(let atLineStart):
            let opening = firstLineStartOpening(from: position, to: end, atLineStart: atLineStart)
            limit = opening ?? end
            terminates = opening != nil
        }
        switch ContentLengthMarker.find(in: buffer, from: position, startLimit: limit, end: end) {
        case .found(let marker):
            consume(&skip, upTo: marker, &events)
            finishSkip(skip, &events)
            return true
        case .partial(let marker) where !atEnd:
            consume(&skip, upTo: marker, &events)
            state = .skip(skip)
            return false
        case .partial, .none:
            consume(&skip, upTo: limit, &events)
            if terminates {
                finishSkip(skip, &events)
                return true
            }
            state = .skip(skip)
            return false
        }
    }

    /// Discards skipped bytes, keeping the first few KiB to recover the id (reported as soon as it is read).
    private mutating func consume(_ skip: inout Skip, upTo index: Int, _ events: inout [FrameEvent]) {
        let count = index - position
        guard count > 0 else { return }
        let room = Self.idPrefixBytes - skip.prefix.count
        if room > 0 {
            skip.prefix.append(contentsOf: buffer[position..<position + min(room, count)])
            if !skip.reported, let id = LenientIDScanner.scan(skip.prefix) {
                events.append(.problem(.init(kind: skip.kind, recoveredID: id, detail: skip.detail)))
                skip.reported = true
            }
        }
        switch skip.until {
        case .count(let remaining): skip.until = .count(remaining - count)
        case .resync: skip.until = .resync(atLineStart: buffer[index - 1] == ASCII.lf)
        case .newline: break
        }
        position = index
    }

    private mutating func finishSkip(_ skip: Skip, _ events: inout [FrameEvent]) {
        if !skip.reported { events.append(.problem(.init(kind: skip.kind, detail: skip.detail))) }
        state = .boundary
    }

    /// The first `{` or `[` in `from..<to` that starts a line.
    private func firstLineStartOpening(from: Int, to: Int, atLineStart: Bool) -> Int? {
        if atLineStart, from < to, ASCII.isOpening(buffer[from]) { return from }
        var searchFrom = from
        while let newline = buffer.firstIndex(of: ASCII.lf, from: searchFrom, to: to) {
            if newline + 1 < to, ASCII.isOpening(buffer[newline + 1]) { return newline + 1 }
            searchFrom = newline + 1
        }
        return nil
    }
}
