/// `application/x-www-form-urlencoded` exactly as Python's `urllib.parse.urlencode` writes it (the Python
/// SDK's Connect URLs and every token request body): `quote_plus` with `safe=''`, so only `A-Z a-z 0-9 _ . - ~`
/// stay as they are, a space becomes `+` and every other UTF-8 byte becomes `%XX` (upper-case hex).
public enum FormEncoding {
    /// `name=value` pairs joined with `&`, in the order given (order matters for byte-exact URLs).
    public static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }

    /// One name or value, `quote_plus`-escaped.
    public static func escape(_ text: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: " "):
                out.append(UInt8(ascii: "+"))
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Splits a query string or form body into pairs, in order; `+` is a space, `%XX` is decoded, a malformed
    /// escape is kept literally (as browsers do). Empty segments (`a=1&&b=2`) are skipped.
    public static func decode(_ text: some StringProtocol) -> [(String, String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { segment in
            if let equals = segment.firstIndex(of: "=") {
                return (unescape(segment[..<equals]), unescape(segment[segment.index(after: equals)...]))
            }
            return (unescape(segment), "")
        }
    }

    /// Reverses `escape` (also accepts lower-case hex and characters that were never escaped).
    public static func unescape(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < bytes.count,
                      let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
