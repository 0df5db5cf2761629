/// Reads JSONValue text into `JSONValue`, keeping member order. With `comments`, a `#` outside a string starts a
/// comment that runs to the end of the line (how transcripts are annotated); without, the text must be
/// plain JSONValue (what an agent writes).
package struct JSONParser {
    /// Where and why the text is not JSONValue.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        package var line: Int
        package var column: Int
        package var reason: String
        package var description: String { "line \(line), column \(column): \(reason)" }
    }

    private let bytes: [UInt8]
    private let comments: Bool
    private var position = 0
    private var line = 1
    private var lineStart = 0
    /// Nesting limit, so a hostile text cannot overflow the stack.
    private static let maxDepth = 256

    package init(_ text: String, comments: Bool = false) {
        self.init(bytes: Array(text.utf8), comments: comments)
    }

    package init(bytes: [UInt8], comments: Bool = false) {
        self.bytes = bytes
        self.comments = comments
    }

    /// Parses exactly one value (surrounding whitespace and comments allowed).
    package static func parse(_ text: String) throws(Failure) -> JSONValue {
        var parser = JSONParser(text)
        return try parser.single()
    }

    /// Parses exactly one value from bytes.
    package static func parse(bytes: [UInt8]) throws(Failure) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        return try parser.single()
    }

    /// Every top-level value of a text that holds several in a row, each with the line it starts on.
    package static func sequence(
        _ text: String,
        comments: Bool = true
    ) throws(Failure) -> [(value: JSONValue, line: Int)] {
        var parser = JSONParser(text, comments: comments)
        var values: [(JSONValue, Int)] = []
        while true {
            parser.skipSpace()
            if parser.position >= parser.bytes.count { return values }
            let line = parser.line
            values.append((try parser.value(depth: 0), line))
        }
    }

    private mutating func single() throws(Failure) -> JSONValue {
        skipSpace()
        let value = try value(depth: 0)
        skipSpace()
        guard position >= bytes.count else { throw failure("unexpected text after the value") }
        return value
    }

    // MARK: Values

    private mutating func value(depth: Int) throws(Failure) -> JSONValue {
        guard depth < Self.maxDepth else { throw failure("nested too deeply") }
        guard let byte = peek() else { throw failure("unexpected end of text, expected a value") }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw failure("unexpected character '\(Character(Unicode.Scalar(byte)))', expected a value")
        }
    }

    private mutating func object(depth: Int) throws(Failure) -> JSONValue {
        position += 1
        var members = JSONObject()
        skipSpace()
        if peek() == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipSpace()
            guard peek() == UInt8(ascii: "\"") else { throw failure("expected a member name in quotes") }
            let key = try string()
            skipSpace()
            guard peek() == UInt8(ascii: ":") else { throw failure("expected ':' after the member name \"\(key)\"") }
            position += 1
            skipSpace()
            members.append((key, try value(depth: depth + 1)))
            skipSpace()
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return .object(members)
            default: throw failure("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func array(depth: Int) throws(Failure) -> JSONValue {
        position += 1
        var items: [JSONValue] = []
        skipSpace()
        if peek() == UInt8(ascii: "]") { position += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return .array(items)
            default: throw failure("expected ',' or ']' in an array")
            }
        }
    }

    private mutating func string() throws(Failure) -> String {
        position += 1
        var scalars = String.UnicodeScalarView()
        var run = position
        func flush(_ parser: JSONParser, upTo end: Int) {
            scalars.append(contentsOf: String(decoding: parser.bytes[run..<end], as: UTF8.self).unicodeScalars)
        }
        while true {
            guard let byte = peek() else { throw failure("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                flush(self, upTo: position)
                position += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                flush(self, upTo: position)
                position += 1
                scalars.append(try escape())
                run = position
            case 0..<0x20:
                throw failure("a control character must be escaped inside a string")
            default:
                position += 1
            }
        }
    }

    private mutating func escape() throws(Failure) -> Unicode.Scalar {
        guard let byte = peek() else { throw failure("unterminated escape") }
        position += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try hex4()
            if (0xD800..<0xDC00).contains(high) {
                guard peek() == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u")
                else {
                    return "\u{FFFD}"
                }
                position += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { return "\u{FFFD}" }
                return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)) ?? "\u{FFFD}"
            }
            return Unicode.Scalar(high) ?? "\u{FFFD}"
        default:
            throw failure("unknown escape '\\\(Character(Unicode.Scalar(byte)))'")
        }
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard position + 4 <= bytes.count,
            let value = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16)
        else {
            throw failure("\\u must be followed by four hex digits")
        }
        position += 4
        return value
    }

    private mutating func number() throws(Failure) -> JSONValue {
        let start = position
        var isInteger = true
        if peek() == UInt8(ascii: "-") { position += 1 }
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): position += 1
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-"):
                isInteger = false
                position += 1
            default:
                return try makeNumber(start, isInteger)
            }
        }
        return try makeNumber(start, isInteger)
    }

    private func makeNumber(_ start: Int, _ isInteger: Bool) throws(Failure) -> JSONValue {
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, let integer = Int64(text) { return .int(integer) }
        guard let double = Double(text), double.isFinite else { throw failure("'\(text)' is not a number") }
        return .double(double)
    }

    private mutating func literal(_ word: String) throws(Failure) {
        let expected = Array(word.utf8)
        guard position + expected.count <= bytes.count, Array(bytes[position..<position + expected.count]) == expected
        else {
            throw failure("expected '\(word)'")
        }
        position += expected.count
    }

    // MARK: Reading

    private func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipSpace() {
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                position += 1
            case UInt8(ascii: "\n"):
                position += 1
                line += 1
                lineStart = position
            case UInt8(ascii: "#") where comments:
                while let next = peek(), next != UInt8(ascii: "\n") { position += 1 }
            default:
                return
            }
        }
    }

    private func failure(_ reason: String) -> Failure {
        Failure(line: line, column: position - lineStart + 1, reason: reason)
    }
}
