/// `application/x-www-form-urlencoded` and query strings: encoded by the agent (Connect URLs, token request
/// bodies) and decoded by the fake Smartcar (and the other way round for Connect's redirect).
///
/// Encoding is Python's `urllib.parse.urlencode` (the Smartcar Python SDK's): `quote_plus` with `safe=''`, so
/// only `A-Z a-z 0-9 _ . - ~` stay as they are, a space becomes `+` (or `%20`, see `Space`) and every other
/// UTF-8 byte becomes `%XX` (upper-case hex). Decoding is the WHATWG URL standard's: `+` is a space (Foundation's
/// `URLComponents` leaves it a plus sign), `%XX` a byte, a malformed escape is kept as written.
package enum FormCoding {
    /// How a space is written.
    package enum Space: Sendable {
        /// `+`, as forms and `quote_plus` write it.
        case plus
        /// `%20`, which reads as a space to form decoders and to `URLComponents` alike (the fake's redirects).
        case percent
    }

    /// `name=value` pairs joined with `&`, in the order given (order matters for byte-exact URLs).
    package static func encode(_ pairs: [(String, String)], space: Space = .plus) -> String {
        pairs.map { "\(escape($0.0, space: space))=\(escape($0.1, space: space))" }.joined(separator: "&")
    }

    /// One name or value, escaped.
    package static func escape(_ text: String, space: Space = .plus) -> String {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: " ") where space == .plus:
                out.append(UInt8(ascii: "+"))
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Splits a query string or form body into pairs, in order. Empty segments (`a=1&&b=2`) are skipped; a
    /// segment without `=` is a name with an empty value.
    package static func decode(_ text: some StringProtocol) -> [(name: String, value: String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { segment in
            if let equals = segment.firstIndex(of: "=") {
                return (unescape(segment[..<equals]), unescape(segment[segment.index(after: equals)...]))
            }
            return (unescape(segment), "")
        }
    }

    /// Decoded pairs as a dictionary; for a repeated name the last value wins.
    package static func decodeDictionary(_ text: some StringProtocol) -> [String: String] {
        Dictionary(decode(text), uniquingKeysWith: { _, last in last })
    }

    /// Reverses `escape` (also accepts lower-case hex and characters that were never escaped).
    package static func unescape(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = Hexadecimal.value(of: bytes[index + 1]), let low = Hexadecimal.value(of: bytes[index + 2])
            {
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
}
