/// `application/x-www-form-urlencoded` and query-string coding, as the WHATWG URL standard does it.
///
/// Foundation's `URLComponents` leaves `+` as a plus sign; forms and Smartcar's SDKs use it for a space.
enum FormCoding {
    /// Decodes `a=1&b=x+y` into pairs, in order; `+` is a space, `%XX` a byte, bad escapes kept as written.
    static func decodePairs(_ text: String) -> [(name: String, value: String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { part in
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decodeComponent(pieces[0]), pieces.count > 1 ? decodeComponent(pieces[1]) : "")
        }
    }

    /// Decoded pairs as a dictionary; for a repeated name the last value wins.
    static func decode(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in decodePairs(text) { result[name] = value }
        return result
    }

    static func decodeComponent(_ component: Substring) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(component.utf8)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < utf8.count,
                      let high = hexValue(utf8[index + 1]), let low = hexValue(utf8[index + 2]) {
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters (a space becomes `%20`), so the
    /// result reads the same to form decoders and to `URLComponents`.
    static func encodeComponent(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                result += "%"
                result.unicodeScalars.append(digits[Int(byte >> 4)])
                result.unicodeScalars.append(digits[Int(byte & 0xF)])
            }
        }
        return result
    }

    /// `a=1&b=x%20y` from pairs, in order.
    static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(encodeComponent($0.0))=\(encodeComponent($0.1))" }.joined(separator: "&")
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
