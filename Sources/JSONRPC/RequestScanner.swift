#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads the envelope of the common message, a well-formed request or notification, in one validating pass
/// over its bytes and without a `JSONDecoder` (which costs tens of microseconds per message).
///
/// It only ever says yes: for a JSON object with `"jsonrpc":"2.0"`, a `method` string, an `id` that is an
/// integer, a string or null (or no `id`), `params` that are an object, an array or null (null: none), every
/// envelope member written once and without escapes, and the whole text valid JSON. Anything else (a batch,
/// an error to report, an unusual spelling) yields nil and is read by `Envelope`, so every rejection is
/// still decided, and worded, in one place.
enum RequestScanner {
    struct Request: Equatable {
        /// nil: a notification.
        var id: RequestID?
        var method: String
        /// Where the `params` value is, when present.
        var params: Range<Int>?
    }

    static func scan(_ p: UnsafeBufferPointer<UInt8>) -> Request? {
        var cursor = JSONCursor(p)
        guard cursor.consume(UInt8(ascii: "{")) else { return nil }
        var versionSeen = false
        var id: RequestID?
        var idSeen = false
        var method: String?
        var params: Range<Int>?
        var paramsSeen = false
        if !cursor.consume(UInt8(ascii: "}")) {
            repeat {
                cursor.skipWhitespace()
                let keyStart = cursor.i + 1
                guard cursor.current == UInt8(ascii: "\""), cursor.skipString(), !cursor.lastStringHadEscape else {
                    return nil
                }
                let key = Member(p, keyStart..<(cursor.i - 1))
                guard cursor.consume(UInt8(ascii: ":")) else { return nil }
                cursor.skipWhitespace()
                let valueStart = cursor.i
                guard let kind = cursor.skipValue() else { return nil }
                let value = valueStart..<cursor.i
                let plainString = kind == .string && !cursor.lastStringHadEscape
                switch key {
                case .jsonrpc:
                    guard !versionSeen, plainString, bytes(p, value, equal: "\"2.0\"") else { return nil }
                    versionSeen = true
                case .id:
                    guard !idSeen, let read = readID(kind, plainString: plainString, p, value) else { return nil }
                    idSeen = true
                    id = read
                case .method:
                    guard method == nil, plainString else { return nil }
                    method = String(
                        decoding: UnsafeBufferPointer(rebasing: p[(value.lowerBound + 1)..<(value.upperBound - 1)]),
                        as: UTF8.self)
                case .params:
                    // `"params": null` means no params, as LSP clients send it.
                    guard !paramsSeen, kind == .object || kind == .array || kind == .null else { return nil }
                    paramsSeen = true
                    if kind != .null { params = value }
                case .other:
                    break
                }
            } while cursor.consume(UInt8(ascii: ","))
            guard cursor.consume(UInt8(ascii: "}")) else { return nil }
        }
        cursor.skipWhitespace()
        guard cursor.atEnd, versionSeen, let method else { return nil }
        return Request(id: id, method: method, params: params)
    }

    private enum Member {
        case jsonrpc, id, method, params, other

        init(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
            if RequestScanner.bytes(p, range, equal: "id") {
                self = .id
            } else if RequestScanner.bytes(p, range, equal: "method") {
                self = .method
            } else if RequestScanner.bytes(p, range, equal: "params") {
                self = .params
            } else if RequestScanner.bytes(p, range, equal: "jsonrpc") {
                self = .jsonrpc
            } else {
                self = .other
            }
        }
    }

    /// Whether `p[range]` spells `text` (a plain byte comparison; the generic `elementsEqual` costs far more).
    static func bytes(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, equal text: StaticString) -> Bool {
        range.count == text.utf8CodeUnitCount
            && memcmp(p.baseAddress! + range.lowerBound, text.utf8Start, range.count) == 0
    }

    /// An integer that fits in 64 bits (no fraction or exponent), a plain string, or null.
    private static func readID(
        _ kind: JSONCursor.Kind, plainString: Bool, _ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>
    ) -> RequestID? {
        switch kind {
        case .null: return .null
        case .string:
            guard plainString else { return nil }
            return .string(
                String(
                    decoding: UnsafeBufferPointer(rebasing: p[(range.lowerBound + 1)..<(range.upperBound - 1)]),
                    as: UTF8.self))
        case .number:
            var value: Int64 = 0
            var index = range.lowerBound
            let negative = p[index] == UInt8(ascii: "-")
            if negative { index += 1 }
            guard index < range.upperBound, range.upperBound - index <= 18 else { return nil }
            while index < range.upperBound {
                let digit = p[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                value = value * 10 + Int64(digit)
                index += 1
            }
            if negative && value == 0 { return nil }
            return .number(negative ? -value : value)
        default: return nil
        }
    }
}

extension IncomingMessage {
    /// A well-formed request or notification, read by `RequestScanner`; nil for anything the connection
    /// would have to answer with an error.
    package init?(reading bytes: [UInt8]) {
        guard let request = bytes.withUnsafeBufferPointer({ RequestScanner.scan($0) }) else { return nil }
        self.init(
            id: request.id, method: request.method, raw: bytes, hasParams: request.params != nil,
            paramsRange: request.params)
    }

    /// The params read without a `JSONDecoder`, for a handler's immediate path, when they are absent or a
    /// flat object (see `FlatParams`); nil otherwise, and then `params(_:)` is the way to read them.
    package var flatParams: FlatParams? {
        guard hasParams else { return FlatParams.none }
        guard let paramsRange else { return nil }
        return raw.withUnsafeBufferPointer { FlatParams.read($0, paramsRange) }
    }
}

/// Params that are a flat object: every member a string without escapes, a number, a boolean or null, and
/// each name written once. A handler's immediate path reads these without a `JSONDecoder`; params of any
/// other shape are not offered this way (`IncomingMessage.flatParams` is nil) and go through `params(_:)`.
package struct FlatParams: Sendable {
    package enum Value: Sendable, Equatable {
        case string(String)
        /// A finite number, as `JSONDecoder` reads it into a `Double`.
        case number(Double)
        case bool(Bool)
        case null
    }

    private var members: [(name: String, value: Value)]

    /// No params at all.
    static let none = FlatParams(members: [])

    private init(members: [(name: String, value: Value)]) { self.members = members }

    /// The member called `name`; nil when there is none.
    package subscript(name: String) -> Value? {
        for member in members where member.name == name { return member.value }
        return nil
    }

    /// Reads the object at `range` of already validated JSON; nil when it is not flat.
    static func read(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> FlatParams? {
        var cursor = JSONCursor(UnsafeBufferPointer(rebasing: p[..<range.upperBound]), at: range.lowerBound)
        guard cursor.consume(UInt8(ascii: "{")) else { return nil }
        var members: [(name: String, value: Value)] = []
        if cursor.consume(UInt8(ascii: "}")) { return FlatParams(members: members) }
        repeat {
            cursor.skipWhitespace()
            let nameStart = cursor.i
            guard cursor.current == UInt8(ascii: "\""), cursor.skipString(), !cursor.lastStringHadEscape else {
                return nil
            }
            let name = text(p, (nameStart + 1)..<(cursor.i - 1))
            guard cursor.consume(UInt8(ascii: ":")) else { return nil }
            cursor.skipWhitespace()
            let valueStart = cursor.i
            guard let kind = cursor.skipValue() else { return nil }
            let value: Value
            switch kind {
            case .string:
                guard !cursor.lastStringHadEscape else { return nil }
                value = .string(text(p, (valueStart + 1)..<(cursor.i - 1)))
            case .number:
                guard let number = Double(text(p, valueStart..<cursor.i)), number.isFinite else { return nil }
                value = .number(number)
            case .bool: value = .bool(p[valueStart] == UInt8(ascii: "t"))
            case .null: value = .null
            case .object, .array: return nil
            }
            guard !members.contains(where: { $0.name == name }) else { return nil }
            members.append((name, value))
        } while cursor.consume(UInt8(ascii: ","))
        guard cursor.consume(UInt8(ascii: "}")) else { return nil }
        return FlatParams(members: members)
    }

    private static func text(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: p[range]), as: UTF8.self)
    }
}

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
