/// Finds the top-level `"id"` of a JSON object in bytes that may be broken (truncated, invalid UTF-8,
/// followed by junk), so an error about an unreadable message can still be sent to the request's id.
/// It reads only as far as it must and never throws; an `"id"` nested inside `params` is not taken.
enum LenientIDScanner {
    static func scan(_ bytes: some Collection<UInt8>) -> RequestID? {
        var index = bytes.startIndex
        func next() -> UInt8? {
            guard index != bytes.endIndex else { return nil }
            defer { index = bytes.index(after: index) }
            return bytes[index]
        }
        func peek() -> UInt8? { index == bytes.endIndex ? nil : bytes[index] }
        func skipWhitespace() { while let b = peek(), b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { _ = next() } }
        /// Reads a string whose opening quote was consumed; nil if it never closes.
        func readString() -> [UInt8]? {
            var out: [UInt8] = []
            while let b = next() {
                switch b {
                case UInt8(ascii: "\""): return out
                case UInt8(ascii: "\\"):
                    guard let escaped = next() else { return nil }
                    switch escaped {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        var hex: [UInt8] = []
                        for _ in 0..<4 { guard let h = next() else { return nil }; hex.append(h) }
                        guard
                            let scalar = UInt32(String(decoding: hex, as: UTF8.self), radix: 16).flatMap(
                                Unicode.Scalar.init)
                        else { return nil }
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: out.append(escaped)
                    }
                default: out.append(b)
                }
            }
            return nil
        }

        func readID() -> RequestID? {
            guard let first = peek() else { return nil }
            if first == UInt8(ascii: "\"") {
                _ = next()
                return readString().map { .string(String(decoding: $0, as: UTF8.self)) }
            }
            var digits: [UInt8] = []
            while let b = peek(), b == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) {
                digits.append(b); _ = next()
            }
            // A number cut off by the end of the bytes might be missing digits: not trusted.
            guard !digits.isEmpty, let end = peek() else { return nil }
            guard end != UInt8(ascii: "."), end != UInt8(ascii: "e"), end != UInt8(ascii: "E") else { return nil }
            return Int64(String(decoding: digits, as: UTF8.self)).map { .number($0) }
        }

        skipWhitespace()
        guard next() == UInt8(ascii: "{") else { return nil }
        var depth = 1
        var expectingKey = true
        while let b = next() {
            switch b {
            case UInt8(ascii: "\""):
                guard let string = readString() else { return nil }
                guard depth == 1 && expectingKey else { continue }
                skipWhitespace()
                guard next() == UInt8(ascii: ":") else { return nil }
                expectingKey = false
                guard string == Array("id".utf8) else { continue }
                skipWhitespace()
                return readID()
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { return nil }
            case UInt8(ascii: ","): if depth == 1 { expectingKey = true }
            default: break
            }
        }
        return nil
    }
}
