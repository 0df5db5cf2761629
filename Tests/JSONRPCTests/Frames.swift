@testable import JSONRPC

/// Builders for wire bytes used across the tests.
enum Frames {
    static func request(_ id: Int, method: String = "echo", params: String? = nil) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)""# + (params.map { #","params":\#($0)"# } ?? "") + "}"
    }

    static func notification(_ method: String, params: String? = nil) -> String {
        #"{"jsonrpc":"2.0","method":"\#(method)""# + (params.map { #","params":\#($0)"# } ?? "") + "}"
    }

    /// `Content-Length: N\r\n` + extra header lines + blank line + body.
    static func framed(_ body: String, headers: String = "") -> [UInt8] {
        Array("Content-Length: \(body.utf8.count)\r\n\(headers)\r\n\(body)".utf8)
    }

    static func line(_ body: String) -> [UInt8] {
        Array("\(body)\n".utf8)
    }
}

extension FrameParser {
    /// Feeds `bytes` in chunks of `chunk` bytes, then `finish()`, collecting every event.
    mutating func events(_ bytes: [UInt8], chunk: Int = .max, finish: Bool = true) -> [FrameEvent] {
        var events: [FrameEvent] = []
        var start = 0
        while start < bytes.count {
            let end = start + min(chunk, bytes.count - start)
            events += feed(bytes[start..<end])
            start = end
        }
        if finish { events += self.finish() }
        return events
    }
}

extension FrameEvent {
    var body: String? {
        if case .message(let bytes, _) = self { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    var style: FramingStyle? {
        if case .message(_, let style) = self { return style }
        return nil
    }

    var problem: FramingProblem? {
        if case .problem(let problem) = self { return problem }
        return nil
    }
}
