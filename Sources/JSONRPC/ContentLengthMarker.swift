/// The resynchronisation marker `Content-Length:[ \t]*[0-9]+[ \t]*\r\n` (ASCII case-insensitive; the
/// header parser tolerates whitespace around the value, so the marker does too).
///
/// It cannot occur inside valid JSON: bare letters are illegal outside strings and a raw CR is illegal
/// inside them. So wherever it appears, a new message starts there, whatever the previous header claimed.
enum ContentLengthMarker {
    enum Search: Equatable {
        /// A complete marker starts at this index.
        case found(Int)
        /// A marker may start at this index, but the bytes end before it can be confirmed.
        case partial(Int)
        case none
    }

    private static let literal = Array("content-length:".utf8)
    private static let maxSpaces = 16
    private static let maxDigits = 32

    /// Looks for a marker starting in `from..<startLimit`, reading bytes up to `end`.
    static func find(in bytes: [UInt8], from: Int, startLimit: Int, end: Int) -> Search {
        guard from < startLimit else { return .none }
        return bytes.withUnsafeBufferPointer { p in
            for i in from..<startLimit where ASCII.lowercased(p[i]) == 0x63 {  // "c"
                switch match(p, at: i, end: end) {
                case .matched: return .found(i)
                case .needMore: return .partial(i)
                case .mismatch: continue
                }
            }
            return .none
        }
    }

    private enum Match { case matched, needMore, mismatch }

    private static func match(_ p: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> Match {
        var j = start
        for expected in literal {
            guard j < end else { return .needMore }
            guard ASCII.lowercased(p[j]) == expected else { return .mismatch }
            j += 1
        }
        var spaces = 0
        while j < end, p[j] == ASCII.space || p[j] == ASCII.tab {
            spaces += 1
            if spaces > maxSpaces { return .mismatch }
            j += 1
        }
        var digits = 0
        while j < end, ASCII.isDigit(p[j]) {
            digits += 1
            if digits > maxDigits { return .mismatch }
            j += 1
        }
        guard digits > 0 else { return j < end ? .mismatch : .needMore }
        spaces = 0
        while j < end, p[j] == ASCII.space || p[j] == ASCII.tab {
            spaces += 1
            if spaces > maxSpaces { return .mismatch }
            j += 1
        }
        guard j < end else { return .needMore }
        guard p[j] == ASCII.cr else { return .mismatch }
        guard j + 1 < end else { return .needMore }
        return p[j + 1] == ASCII.lf ? .matched : .mismatch
    }
}
