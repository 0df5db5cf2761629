import WireFormats

/// Request lines built before a timed run, back to back in one buffer, so the timed loop only writes
/// slices of it: line `i` is `bytes[offsets[i] ..< offsets[i + 1]]`, newline included.
struct RequestBatch: Sendable {
    let bytes: [UInt8]
    let offsets: [Int]

    var count: Int { offsets.count - 1 }

    init(count: Int, line: (Int) -> String) {
        var bytes: [UInt8] = []
        var offsets = [0]
        offsets.reserveCapacity(count + 1)
        for index in 0..<count {
            bytes.append(contentsOf: line(index).utf8)
            bytes.append(0x0A)
            offsets.append(bytes.count)
        }
        self.bytes = bytes
        self.offsets = offsets
    }
}

/// The JSON-RPC requests the bench sends, as NDJSON lines (the framing both sidecars read).
enum Requests {
    static func getToken(id: Int, key: String, forceRefresh: Bool = false) -> String {
        let force = forceRefresh ? #","forceRefresh":true"# : ""
        return #"{"jsonrpc":"2.0","id":\#(id),"method":"getToken","params":{"key":\#(JSONText.quoted(key))\#(force)}}"#
    }

    static func storeToken(id: Int, key: String, accessToken: String, refreshToken: String, expiresAt: String) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"storeToken","params":{"key":\#(JSONText.quoted(key)),"#
            + #""accessToken":\#(JSONText.quoted(accessToken)),"refreshToken":\#(JSONText.quoted(refreshToken)),"#
            + #""expiresAt":\#(JSONText.quoted(expiresAt))}}"#
    }

    static func status(id: Int) -> String { #"{"jsonrpc":"2.0","id":\#(id),"method":"status"}"# }
}

/// Small checks on reply lines, without a JSON parse in timed code.
enum Replies {
    /// What every successful reply holds near its start.
    static let resultMarker = Array(#""result""#.utf8)
    /// What every request line holds near its start: what the floor (`cat`) echoes back.
    static let methodMarker = Array(#""method""#.utf8)

    static func isResult(_ line: UnsafeRawBufferPointer) -> Bool { contains(line, resultMarker) }
    static func isResult(_ line: String) -> Bool { line.contains(#""result""#) }

    /// The string value of `"name":"…"` in a reply (the peer puts a space after the colon; values the
    /// bench reads never contain escapes).
    static func stringField(_ name: String, in line: String) -> String? {
        guard var rest = value(of: name, in: line), rest.first == "\"" else { return nil }
        rest = rest.dropFirst()
        guard let close = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<close])
    }

    /// The integer value of `"name":N` in a reply.
    static func intField(_ name: String, in line: String) -> Int? {
        value(of: name, in: line).flatMap { Int($0.prefix { $0.isNumber || $0 == "-" }) }
    }

    private static func value(of name: String, in line: String) -> Substring? {
        guard let range = line.range(of: "\"\(name)\":") else { return nil }
        return line[range.upperBound...].drop { $0 == " " }
    }

    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        let first = needle[0]
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var matched = 1
                while matched < needle.count && haystack[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return true }
            }
            index += 1
        }
        return false
    }
}
