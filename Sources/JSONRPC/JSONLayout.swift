import Foundation

/// Where the parts of a JSON text that `JSONDecoder` already accepted are, read from its bytes: the elements of
/// a batch, the member names of a message. Off the hot path (batches, and messages `RequestScanner` left to
/// `Envelope`); it does not validate, and walks without recursion, so any depth `JSONDecoder` took is fine.
enum JSONLayout {
    /// The byte ranges of the elements of the array `bytes` holds; nil when it is not an array.
    static func elements(ofArray bytes: [UInt8]) -> [Range<Int>]? {
        var i = skipWhitespace(bytes, from: 0)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "[") else { return nil }
        i = skipWhitespace(bytes, from: i + 1)
        var ranges: [Range<Int>] = []
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { return ranges }
        while i < bytes.count {
            let end = skipValue(bytes, from: i)
            ranges.append(i..<end)
            i = skipWhitespace(bytes, from: end)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ",") else { break }
            i = skipWhitespace(bytes, from: i + 1)
        }
        return ranges
    }

    /// The names of the members of the object `bytes` holds, in order, duplicates included (escapes decoded);
    /// nil when it is not an object.
    static func memberNames(ofObject bytes: [UInt8]) -> [String]? {
        var i = skipWhitespace(bytes, from: 0)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return nil }
        i = skipWhitespace(bytes, from: i + 1)
        var names: [String] = []
        while i < bytes.count, bytes[i] == UInt8(ascii: "\"") {
            let end = skipString(bytes, from: i)
            let literal = bytes[i..<end]
            if literal.contains(UInt8(ascii: "\\")) {
                let wrapped = Data([UInt8(ascii: "[")] + literal + [UInt8(ascii: "]")])
                guard let name = (try? JSONDecoder().decode([String].self, from: wrapped))?.first else { return nil }
                names.append(name)
            } else {
                names.append(String(decoding: literal.dropFirst().dropLast(), as: UTF8.self))
            }
            i = skipWhitespace(bytes, from: end)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
            i = skipValue(bytes, from: skipWhitespace(bytes, from: i + 1))
            i = skipWhitespace(bytes, from: i)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ",") else { break }
            i = skipWhitespace(bytes, from: i + 1)
        }
        return names
    }

    /// The end of the value starting at `start`.
    private static func skipValue(_ bytes: [UInt8], from start: Int) -> Int {
        var i = start
        var depth = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "\""):
                i = skipString(bytes, from: i)
                if depth == 0 { return i }
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth == 0 { return i }
                depth -= 1
                if depth == 0 { return i + 1 }
            case UInt8(ascii: ","), 0x20, 0x09, 0x0A, 0x0D:
                if depth == 0 { return i }
            default:
                break
            }
            i += 1
        }
        return i
    }

    /// The end of the string literal whose opening quote is at `start` (just past its closing quote).
    private static func skipString(_ bytes: [UInt8], from start: Int) -> Int {
        var i = start + 1
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "\""): return i + 1
            case UInt8(ascii: "\\"): i += 2
            default: i += 1
            }
        }
        return i
    }

    private static func skipWhitespace(_ bytes: [UInt8], from start: Int) -> Int {
        var i = start
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
        return i
    }
}
