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

    /// The names of the members of the object `bytes` holds, in order, duplicates included, escapes decoded; a
    /// name that is not short plain ASCII (so no envelope member's) reads as "". nil when it is not an object.
    static func memberNames(ofObject bytes: [UInt8]) -> [String]? {
        var i = skipWhitespace(bytes, from: 0)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return nil }
        i = skipWhitespace(bytes, from: i + 1)
        var names: [String] = []
        while i < bytes.count, bytes[i] == UInt8(ascii: "\"") {
            let end = skipString(bytes, from: i)
            let literal = bytes[i..<end]
            names.append(asciiName(literal.dropFirst().dropLast()))
            i = skipWhitespace(bytes, from: end)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
            i = skipValue(bytes, from: skipWhitespace(bytes, from: i + 1))
            i = skipWhitespace(bytes, from: i)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ",") else { break }
            i = skipWhitespace(bytes, from: i + 1)
        }
        return names
    }

    /// The text of a name written between quotes, escapes decoded, when it is at most 16 ASCII characters; else "".
    private static func asciiName(_ written: ArraySlice<UInt8>) -> String {
        var name: [UInt8] = []
        var i = written.startIndex
        while i < written.endIndex, name.count <= 16 {
            let byte = written[i]
            guard byte == UInt8(ascii: "\\") else {
                guard byte < 0x80 else { return "" }
                name.append(byte)
                i += 1
                continue
            }
            guard i + 1 < written.endIndex else { return "" }
            switch written[i + 1] {
            case UInt8(ascii: "u"):
                guard i + 6 <= written.endIndex,
                    let unit = UInt8(String(decoding: written[(i + 2)..<(i + 6)], as: UTF8.self), radix: 16),
                    unit < 0x80
                else { return "" }
                name.append(unit)
                i += 6
            case UInt8(ascii: "b"): name.append(0x08); i += 2
            case UInt8(ascii: "f"): name.append(0x0C); i += 2
            case UInt8(ascii: "n"): name.append(0x0A); i += 2
            case UInt8(ascii: "r"): name.append(0x0D); i += 2
            case UInt8(ascii: "t"): name.append(0x09); i += 2
            case let escaped: name.append(escaped); i += 2
            }
        }
        return name.count <= 16 && i >= written.endIndex ? String(decoding: name, as: UTF8.self) : ""
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
