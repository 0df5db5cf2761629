/// Reads the top-level `"id"` of a possibly broken JSON object, so that errors about a message that cannot
/// be parsed (or framed) still reach the request that caused them.
///
/// Hand-written and forgiving: it tracks nesting (an `"id"` inside `params` is not taken) and string
/// boundaries, and accepts an integer or string value only once the value is complete (a number must be
/// followed by a delimiter), so a prefix of a message yields either the right id or none.
enum LenientIDScanner {
    static func scan(_ bytes: [UInt8]) -> RequestID? {
        bytes.withUnsafeBufferPointer { scan($0) }
    }

    static func scan(_ bytes: ArraySlice<UInt8>) -> RequestID? {
        bytes.withUnsafeBufferPointer { scan($0) }
    }

    static func scan(_ p: UnsafeBufferPointer<UInt8>) -> RequestID? {
        var i = skipWhitespace(p, from: 0)
        guard i < p.count, p[i] == ASCII.openBrace else { return nil }
        i += 1
        var depth = 1
        while i < p.count {
            switch p[i] {
            case ASCII.quote:
                guard let end = endOfString(p, openingQuote: i) else { return nil }
                if depth == 1 {
                    let colon = skipWhitespace(p, from: end)
                    if colon < p.count, p[colon] == ASCII.colon, end - i == 4, p[i + 1] == 0x69, p[i + 2] == 0x64 {  // "id"
                        return value(p, from: skipWhitespace(p, from: colon + 1))
                    }
                }
                i = end
            case ASCII.openBrace, ASCII.openBracket:
                depth += 1
                i += 1
            case ASCII.closeBrace, ASCII.closeBracket:
                depth -= 1
                if depth == 0 { return nil }
                i += 1
            default:
                i += 1
            }
        }
        return nil
    }

    /// The id value starting at `i`: a complete string, or an integer followed by a delimiter.
    private static func value(_ p: UnsafeBufferPointer<UInt8>, from i: Int) -> RequestID? {
        guard i < p.count else { return nil }
        if p[i] == ASCII.quote {
            guard let end = endOfString(p, openingQuote: i) else { return nil }
            return .string(JSONString.decode(p, (i + 1)..<(end - 1)))
        }
        var j = i
        if p[j] == ASCII.minus { j += 1 }
        let digitsStart = j
        while j < p.count, ASCII.isDigit(p[j]) { j += 1 }
        guard j > digitsStart, j < p.count else { return nil }
        let next = p[j]
        guard ASCII.isWhitespace(next) || next == ASCII.comma || next == ASCII.closeBrace else { return nil }
        let text = String(decoding: UnsafeBufferPointer(rebasing: p[i..<j]), as: UTF8.self)
        return Int64(text).map(RequestID.number)
    }

    /// Index just past the closing quote of the string opening at `openingQuote`, or nil if unterminated.
    private static func endOfString(_ p: UnsafeBufferPointer<UInt8>, openingQuote: Int) -> Int? {
        var j = openingQuote + 1
        while j < p.count {
            switch p[j] {
            case ASCII.backslash: j += 2
            case ASCII.quote: return j + 1
            default: j += 1
            }
        }
        return nil
    }

    private static func skipWhitespace(_ p: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
        var j = from
        while j < p.count, ASCII.isWhitespace(p[j]) { j += 1 }
        return j
    }
}
