/// A validating single-pass scan of one JSON text (RFC 8259, UTF-8 checked), reporting the direct children
/// of the top-level value as byte ranges.
///
/// Envelope decoding only needs `jsonrpc`, `id`, `method` and the kind of `params`; this gets them (and
/// rejects anything that is not JSON) for a fraction of what a `JSONDecoder` pass costs on small messages.
/// `params` themselves are still decoded by `JSONDecoder` into the handler's `Decodable` type.
enum JSONScanner {
    enum Kind: Equatable { case object, array, string, number, bool, null }

    /// A value: what it is and where its bytes are (a string's range includes its quotes).
    struct Value: Equatable {
        var kind: Kind
        var range: Range<Int>
    }

    struct Member: Equatable {
        /// The key's bytes between the quotes, still escaped.
        var key: Range<Int>
        var value: Value
    }

    enum TopLevel: Equatable {
        case object([Member])
        case array([Value])
        case scalar(Kind)
    }

    /// Nesting deeper than this is rejected (as `JSONDecoder` does), keeping the scan's recursion bounded.
    static let maxDepth = 512

    /// The structure of `bytes` if it is exactly one JSON value (with optional surrounding whitespace and,
    /// as `JSONDecoder` allows, a leading byte order mark).
    static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> TopLevel? {
        var scanner = Cursor(p: bytes)
        if bytes.starts(with: ASCII.byteOrderMark) { scanner.i = ASCII.byteOrderMark.count }
        scanner.skipWhitespace()
        guard scanner.i < bytes.count else { return nil }
        let top: TopLevel
        switch bytes[scanner.i] {
        case ASCII.openBrace:
            var members: [Member] = []
            guard scanner.object(depth: 1, visit: { members.append($0) }) else { return nil }
            top = .object(members)
        case ASCII.openBracket:
            var elements: [Value] = []
            guard scanner.array(depth: 1, visit: { elements.append($0) }) else { return nil }
            top = .array(elements)
        default:
            guard let value = scanner.value(depth: 0) else { return nil }
            top = .scalar(value.kind)
        }
        scanner.skipWhitespace()
        return scanner.i == bytes.count ? top : nil
    }

    private struct Cursor {
        let p: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func skipWhitespace() {
            while i < p.count, ASCII.isWhitespace(p[i]) { i += 1 }
        }

        mutating func value(depth: Int) -> Value? {
            guard i < p.count, depth <= JSONScanner.maxDepth else { return nil }
            let start = i
            let kind: Kind
            switch p[i] {
            case ASCII.openBrace:
                guard object(depth: depth + 1, visit: { _ in }) else { return nil }
                kind = .object
            case ASCII.openBracket:
                guard array(depth: depth + 1, visit: { _ in }) else { return nil }
                kind = .array
            case ASCII.quote:
                guard string() else { return nil }
                kind = .string
            case 0x74:  // t
                guard literal("true") else { return nil }
                kind = .bool
            case 0x66:  // f
                guard literal("false") else { return nil }
                kind = .bool
            case 0x6E:  // n
                guard literal("null") else { return nil }
                kind = .null
            default:
                guard number() else { return nil }
                kind = .number
            }
            return Value(kind: kind, range: start..<i)
        }

        /// `{` members `}`; `visit` sees each member (used at the top level only).
        mutating func object(depth: Int, visit: (Member) -> Void) -> Bool {
            guard depth <= JSONScanner.maxDepth else { return false }
            i += 1
            skipWhitespace()
            if i < p.count, p[i] == ASCII.closeBrace {
                i += 1
                return true
            }
            while true {
                guard i < p.count, p[i] == ASCII.quote else { return false }
                let keyStart = i + 1
                guard string() else { return false }
                let key = keyStart..<(i - 1)
                skipWhitespace()
                guard i < p.count, p[i] == ASCII.colon else { return false }
                i += 1
                skipWhitespace()
                guard let member = value(depth: depth) else { return false }
                visit(Member(key: key, value: member))
                skipWhitespace()
                guard i < p.count else { return false }
                if p[i] == ASCII.closeBrace {
                    i += 1
                    return true
                }
                guard p[i] == ASCII.comma else { return false }
                i += 1
                skipWhitespace()
            }
        }

        /// `[` elements `]`; `visit` sees each element (used at the top level only).
        mutating func array(depth: Int, visit: (Value) -> Void) -> Bool {
            guard depth <= JSONScanner.maxDepth else { return false }
            i += 1
            skipWhitespace()
            if i < p.count, p[i] == ASCII.closeBracket {
                i += 1
                return true
            }
            while true {
                guard let element = value(depth: depth) else { return false }
                visit(element)
                skipWhitespace()
                guard i < p.count else { return false }
                if p[i] == ASCII.closeBracket {
                    i += 1
                    return true
                }
                guard p[i] == ASCII.comma else { return false }
                i += 1
                skipWhitespace()
            }
        }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard i + count <= p.count else { return false }
            for k in 0..<count where p[i + k] != text.utf8Start[k] { return false }
            i += count
            return true
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func number() -> Bool {
            if i < p.count, p[i] == ASCII.minus { i += 1 }
            guard i < p.count, ASCII.isDigit(p[i]) else { return false }
            if p[i] == 0x30 {
                i += 1
            } else {
                while i < p.count, ASCII.isDigit(p[i]) { i += 1 }
            }
            if i < p.count, p[i] == 0x2E {  // .
                i += 1
                guard digits() else { return false }
            }
            if i < p.count, p[i] == 0x65 || p[i] == 0x45 {  // e E
                i += 1
                if i < p.count, p[i] == 0x2B || p[i] == ASCII.minus { i += 1 }
                guard digits() else { return false }
            }
            return true
        }

        private mutating func digits() -> Bool {
            let start = i
            while i < p.count, ASCII.isDigit(p[i]) { i += 1 }
            return i > start
        }

        /// A string literal: no raw control characters, valid escapes, valid UTF-8.
        mutating func string() -> Bool {
            i += 1
            while i < p.count {
                let b = p[i]
                switch b {
                case ASCII.quote:
                    i += 1
                    return true
                case ASCII.backslash:
                    guard i + 1 < p.count else { return false }
                    switch p[i + 1] {
                    case ASCII.quote, ASCII.backslash, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74:  // " \ / b f n r t
                        i += 2
                    case 0x75:  // u
                        guard let unit = JSONString.hex4(p, i + 2, p.count) else { return false }
                        i += 6
                        if (0xDC00..<0xE000).contains(unit) { return false }
                        if (0xD800..<0xDC00).contains(unit) {
                            // A high surrogate must be followed by an escaped low one.
                            guard i + 1 < p.count, p[i] == ASCII.backslash, p[i + 1] == 0x75,
                                  let low = JSONString.hex4(p, i + 2, p.count), (0xDC00..<0xE000).contains(low)
                            else { return false }
                            i += 6
                        }
                    default:
                        return false
                    }
                case 0x00..<0x20:
                    return false
                case 0x20..<0x80:
                    i += 1
                default:
                    guard let length = JSONString.utf8SequenceLength(p, at: i) else { return false }
                    i += length
                }
            }
            return false
        }
    }
}
