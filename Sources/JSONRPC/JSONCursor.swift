/// A validating walk over JSON bytes (RFC 8259, UTF-8 checked) for the hand-written readers of the hot path.
///
/// It is deliberately stricter than `JSONDecoder`: whatever it cannot vouch for (nesting deeper than
/// `maxDepth`, a `\u` escape that is not a valid scalar or surrogate pair, a leading byte order mark) it
/// rejects, and its callers then leave the message to `JSONDecoder`. So it never accepts a text that
/// `JSONDecoder` would refuse.
struct JSONCursor {
    enum Kind: Equatable { case object, array, string, number, bool, null }

    static let maxDepth = 64

    let p: UnsafeBufferPointer<UInt8>
    var i: Int
    /// Whether the last string skipped held a backslash escape.
    private(set) var lastStringHadEscape = false

    init(_ p: UnsafeBufferPointer<UInt8>, at start: Int = 0) {
        self.p = p
        i = start
    }

    var atEnd: Bool { i >= p.count }

    /// The byte at the cursor, or 0 past the end (0 is never valid JSON outside a string).
    var current: UInt8 { i < p.count ? p[i] : 0 }

    mutating func skipWhitespace() {
        while i < p.count {
            let b = p[i]
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            i += 1
        }
    }

    /// Consumes `byte` (after optional whitespace) if it is next.
    mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard current == byte else { return false }
        i += 1
        return true
    }

    /// Skips one value starting at the cursor (no leading whitespace); its kind, or nil if it is not valid JSON.
    mutating func skipValue(depth: Int = 0) -> Kind? {
        switch current {
        case UInt8(ascii: "{"): return skipObject(depth: depth + 1) ? .object : nil
        case UInt8(ascii: "["): return skipArray(depth: depth + 1) ? .array : nil
        case UInt8(ascii: "\""): return skipString() ? .string : nil
        case UInt8(ascii: "t"): return skipLiteral("true") ? .bool : nil
        case UInt8(ascii: "f"): return skipLiteral("false") ? .bool : nil
        case UInt8(ascii: "n"): return skipLiteral("null") ? .null : nil
        default: return skipNumber() ? .number : nil
        }
    }

    private mutating func skipObject(depth: Int) -> Bool {
        guard depth <= Self.maxDepth else { return false }
        i += 1
        if consume(UInt8(ascii: "}")) { return true }
        repeat {
            skipWhitespace()
            guard current == UInt8(ascii: "\""), skipString(), consume(UInt8(ascii: ":")) else { return false }
            skipWhitespace()
            guard skipValue(depth: depth) != nil else { return false }
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "}"))
    }

    private mutating func skipArray(depth: Int) -> Bool {
        guard depth <= Self.maxDepth else { return false }
        i += 1
        if consume(UInt8(ascii: "]")) { return true }
        repeat {
            skipWhitespace()
            guard skipValue(depth: depth) != nil else { return false }
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]"))
    }

    private mutating func skipLiteral(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard i + count <= p.count else { return false }
        for k in 0..<count where p[i + k] != text.utf8Start[k] { return false }
        i += count
        return true
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    mutating func skipNumber() -> Bool {
        if current == UInt8(ascii: "-") { i += 1 }
        guard Self.isDigit(current) else { return false }
        if current == UInt8(ascii: "0") { i += 1 } else { skipDigits() }
        if current == UInt8(ascii: ".") {
            i += 1
            guard Self.isDigit(current) else { return false }
            skipDigits()
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            i += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { i += 1 }
            guard Self.isDigit(current) else { return false }
            skipDigits()
        }
        return true
    }

    private mutating func skipDigits() {
        while Self.isDigit(current) { i += 1 }
    }

    /// A string literal at the cursor: no raw control characters, valid escapes, valid UTF-8.
    mutating func skipString() -> Bool {
        lastStringHadEscape = false
        i += 1
        while i < p.count {
            let b = p[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return true
            } else if b == UInt8(ascii: "\\") {
                lastStringHadEscape = true
                guard skipEscape() else { return false }
            } else if b < 0x20 {
                return false
            } else if b < 0x80 {
                i += 1
            } else {
                guard let length = utf8SequenceLength() else { return false }
                i += length
            }
        }
        return false
    }

    private mutating func skipEscape() -> Bool {
        guard i + 1 < p.count else { return false }
        switch p[i + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            i += 2
            return true
        case UInt8(ascii: "u"):
            guard let unit = hex4(at: i + 2) else { return false }
            i += 6
            if (0xDC00..<0xE000).contains(unit) { return false }
            guard (0xD800..<0xDC00).contains(unit) else { return true }
            // A high surrogate must be followed by an escaped low one.
            guard i + 1 < p.count, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u"),
                  let low = hex4(at: i + 2), (0xDC00..<0xE000).contains(low)
            else { return false }
            i += 6
            return true
        default:
            return false
        }
    }

    private func hex4(at start: Int) -> UInt16? {
        guard start + 4 <= p.count else { return nil }
        var value: UInt16 = 0
        for k in start..<(start + 4) {
            let b = p[k]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    /// Length of the valid UTF-8 sequence at the cursor (a non-ASCII lead byte), or nil: rejects overlong
    /// forms, surrogates and code points above U+10FFFF.
    private func utf8SequenceLength() -> Int? {
        let lead = p[i]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return nil
        }
        guard i + length <= p.count, (low...high).contains(p[i + 1]) else { return nil }
        for k in (i + 2)..<(i + length) where !(0x80...0xBF).contains(p[k]) { return nil }
        return length
    }

    static func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }
}
