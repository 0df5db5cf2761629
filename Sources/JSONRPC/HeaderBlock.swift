/// The header lines of one LSP-framed message, accumulated line by line by `FrameParser`.
struct HeaderBlock {
    /// Bytes of complete (or discarded) header lines so far, terminators included.
    var size = 0
    /// Complete header lines so far.
    var lines = 0
    /// Bytes of the current, incomplete line already searched for its newline.
    var lineScanned = 0
    /// Set while skipping the rest of a line too long to buffer.
    var discardingLine = false
    var contentLength: Int?
    /// The first framing error seen in the block; reported when the block ends.
    var failure: (kind: FramingProblem.Kind, detail: String)?

    enum Line {
        case contentLength(Int)
        case invalidContentLength(String)
        case other
        case notAHeader
    }

    mutating func note(_ line: Line) {
        switch line {
        case .contentLength(let value):
            if let existing = contentLength, existing != value {
                if failure == nil {
                    failure = (.conflictingContentLength, "conflicting Content-Length values \(existing) and \(value)")
                }
            } else {
                contentLength = value
            }
        case .invalidContentLength(let text):
            if failure == nil { failure = (.invalidContentLength, "invalid Content-Length '\(text)'") }
        case .other, .notAHeader:
            break
        }
    }

    /// Parses one header line (terminator removed): `Name: value`, name case-insensitive, value trimmed.
    /// With `nameOnly` (a line too long to keep) only the name is checked and the value ignored.
    static func parse(_ line: ArraySlice<UInt8>, nameOnly: Bool = false) -> Line {
        guard let colon = line.firstIndex(of: ASCII.colon) else { return .notAHeader }
        let name = trimmed(line[line.startIndex..<colon])
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else { return .notAHeader }
        guard !nameOnly, name.count == 14, name.map(ASCII.lowercased).elementsEqual("content-length".utf8) else { return .other }
        let value = trimmed(line[(colon + 1)...])
        guard !value.isEmpty, value.allSatisfy(ASCII.isDigit) else { return .invalidContentLength(printable(value)) }
        var result = 0
        for digit in value {
            let (shifted, o1) = result.multipliedReportingOverflow(by: 10)
            let (sum, o2) = shifted.addingReportingOverflow(Int(digit - 0x30))
            if o1 || o2 { return .invalidContentLength(printable(value)) }
            result = sum
        }
        return .contentLength(result)
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == ASCII.space || first == ASCII.tab { slice.removeFirst() }
        while let last = slice.last, last == ASCII.space || last == ASCII.tab { slice.removeLast() }
        return slice
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        default: return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }

    /// A header value made safe to quote in a log line.
    private static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        let shown = bytes.prefix(40).map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : Character("?") }
        return String(shown) + (bytes.count > 40 ? "…" : "")
    }
}
