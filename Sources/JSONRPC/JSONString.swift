/// JSON string literals: reading them back (with escapes) and writing them (escaping what JSON requires).
enum JSONString {
    /// The string a literal's inner bytes (between the quotes) denote. In text that was not validated,
    /// unpaired surrogate escapes become U+FFFD and a broken escape ends the string.
    static func decode(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        guard p[range].contains(ASCII.backslash) else {
            return String(decoding: UnsafeBufferPointer(rebasing: p[range]), as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var i = range.lowerBound
        while i < range.upperBound {
            let b = p[i]
            guard b == ASCII.backslash, i + 1 < range.upperBound else {
                out.append(b)
                i += 1
                continue
            }
            let escape = p[i + 1]
            i += 2
            switch escape {
            case 0x62: out.append(0x08)  // b
            case 0x66: out.append(0x0C)  // f
            case 0x6E: out.append(ASCII.lf)  // n
            case 0x72: out.append(ASCII.cr)  // r
            case 0x74: out.append(ASCII.tab)  // t
            case 0x75:  // u
                guard let unit = hex4(p, i, range.upperBound) else { return String(decoding: out, as: UTF8.self) }
                i += 4
                var scalar = Unicode.Scalar(unit)
                if (0xD800..<0xDC00).contains(unit), i + 1 < range.upperBound, p[i] == ASCII.backslash, p[i + 1] == 0x75,
                   let low = hex4(p, i + 2, range.upperBound), (0xDC00..<0xE000).contains(low) {
                    scalar = Unicode.Scalar(0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00))
                    i += 6
                }
                out.append(contentsOf: String(Character(scalar ?? "\u{FFFD}")).utf8)
            default: out.append(escape)  // " \ /
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `text` as a JSON string literal. Only `"`, `\` and control characters are escaped (`/` and
    /// non-ASCII are written as they are).
    static func write(_ text: String, into out: inout [UInt8]) {
        out.append(ASCII.quote)
        defer { out.append(ASCII.quote) }
        let plain = text.utf8.withContiguousStorageIfAvailable { bytes in
            !bytes.contains { $0 < 0x20 || $0 == ASCII.quote || $0 == ASCII.backslash }
        }
        if plain == true {
            out.append(contentsOf: text.utf8)
            return
        }
        for b in text.utf8 {
            switch b {
            case ASCII.quote: out.append(contentsOf: [ASCII.backslash, ASCII.quote])
            case ASCII.backslash: out.append(contentsOf: [ASCII.backslash, ASCII.backslash])
            case ASCII.lf: out.append(contentsOf: [ASCII.backslash, 0x6E])
            case ASCII.cr: out.append(contentsOf: [ASCII.backslash, 0x72])
            case ASCII.tab: out.append(contentsOf: [ASCII.backslash, 0x74])
            case 0x00..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [ASCII.backslash, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0x0F)]])
            default: out.append(b)
            }
        }
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    /// The four hex digits at `i` (before `end`) as a UTF-16 code unit.
    static func hex4(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> UInt16? {
        guard i + 4 <= end else { return nil }
        var value: UInt16 = 0
        for k in 0..<4 {
            guard let digit = hexValue(p[i + k]) else { return nil }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    /// Length of the valid UTF-8 sequence starting at `i` (a non-ASCII lead byte), or nil: rejects
    /// overlong forms, surrogates and code points above U+10FFFF.
    static func utf8SequenceLength(_ p: UnsafeBufferPointer<UInt8>, at i: Int) -> Int? {
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
        guard i + length <= p.count else { return nil }
        guard (low...high).contains(p[i + 1]) else { return nil }
        for k in 2..<max(2, length) where !(0x80...0xBF).contains(p[i + k]) { return nil }
        return length
    }
}
