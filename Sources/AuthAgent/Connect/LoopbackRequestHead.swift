import WireFormats

/// The request line of a request to the loopback listener: all `connect` needs of it. The header fields are
/// read past (bounded by the listener), never interpreted.
struct LoopbackRequestHead: Sendable, Equatable {
    var method: String
    /// The path of the request target, still percent-encoded.
    var path: String
    /// The query (without `?`), `""` when absent.
    var query: String

    /// Reads `GET /path?query HTTP/1.1` from the head's bytes (the head without its final empty line); nil
    /// when the first line is not a request line of an origin-form target.
    init?(_ head: ArraySlice<UInt8>) {
        let lineEnd = head.firstIndex(of: 13) ?? head.endIndex
        let parts = head[head.startIndex..<lineEnd].split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, let method = String(validating: parts[0], as: UTF8.self),
            let target = String(validating: parts[1], as: UTF8.self),
            let version = String(validating: parts[2], as: UTF8.self),
            !method.isEmpty, method.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }), version.hasPrefix("HTTP/1."),
            target.hasPrefix("/"), target.utf8.allSatisfy({ $0 > 32 && $0 < 127 })
        else { return nil }
        self.method = method
        (path, query) = RequestTarget.split(target)
    }

    /// Where the head ends (the index of its `\r\n\r\n`), or nil if it has not all arrived.
    static func endOfHead(in buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 0...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }
}
