import Testing

@testable import JSONRPC

/// Byte-level framing: every case feeds raw bytes and asserts the exact events.
@Suite struct FrameParserTests {
    static let ping = #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#
    static func frame(_ body: String) -> String { "Content-Length: \(body.utf8.count)\r\n\r\n\(body)" }

    /// Feeds `input` in chunks of `chunk` bytes, then finishes.
    func events(_ input: String, chunk: Int = .max, maxBody: Int = 4 << 20) -> [FrameEvent] {
        events(Array(input.utf8), chunk: chunk, maxBody: maxBody)
    }

    func events(_ bytes: [UInt8], chunk: Int = .max, maxBody: Int = 4 << 20) -> [FrameEvent] {
        var parser = FrameParser(maxBodyBytes: maxBody)
        var out: [FrameEvent] = []
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + max(1, min(chunk, bytes.count)))
            out += parser.feed(bytes[index..<end])
            index = end
        }
        return out + parser.finish()
    }

    func message(_ body: String, _ style: FramingStyle = .contentLength) -> FrameEvent {
        .message(Array(body.utf8), style)
    }

    func problemKinds(_ events: [FrameEvent]) -> [FramingProblem.Kind] {
        events.compactMap {
            if case .problem(let p) = $0 { return p.kind }; return nil
        }
    }

    func messages(_ events: [FrameEvent]) -> [String] {
        events.compactMap {
            if case .message(let bytes, _) = $0 { return String(decoding: bytes, as: UTF8.self) }; return nil
        }
    }

    @Test func oneFrame() {
        #expect(events(Self.frame(Self.ping)) == [message(Self.ping)])
    }

    @Test(arguments: [1, 2, 3, 7, 16, 17])
    func splitAnywhere(chunk: Int) {
        let input = Self.frame(Self.ping) + Self.frame(Self.ping) + Self.ping + "\r\n"
        #expect(
            events(input, chunk: chunk) == [
                message(Self.ping), message(Self.ping), message(Self.ping, .newlineDelimited),
            ])
    }

    @Test func otherHeadersAndLowerCaseNames() {
        let input =
            "content-type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-length:  \(Self.ping.utf8.count) \r\n\r\n\(Self.ping)"
        #expect(events(input) == [message(Self.ping)])
    }

    @Test func duplicateEqualContentLengthIsFine() {
        let n = Self.ping.utf8.count
        #expect(events("Content-Length: \(n)\r\nContent-Length: \(n)\r\n\r\n\(Self.ping)") == [message(Self.ping)])
    }

    @Test(arguments: [
        ("Content-Length: 10\r\nContent-Length: 11\r\n\r\n", FramingProblem.Kind.conflictingContentLength),
        ("Content-Length: abc\r\n\r\n", .invalidContentLength),
        ("Content-Length: -5\r\n\r\n", .invalidContentLength),
        ("Content-Length: 99999999999999999999999\r\n\r\n", .invalidContentLength),
        ("Content-Type: text/plain\r\n\r\n", .missingContentLength),
    ])
    func badLengthsAreReportedAndTheNextMessageIsServed(header: String, kind: FramingProblem.Kind) {
        let result = events(header + #"{"jsonrpc":"2.0","id":9,"method":"x"}"# + Self.frame(Self.ping))
        #expect(problemKinds(result) == [kind])
        #expect(messages(result) == [Self.ping])
        // The skipped body's id is recovered so the error can go to it.
        if case .problem(let problem) = result.first { #expect(problem.recoveredID == .number(9)) }
    }

    @Test func hugeContentLengthIsSkippedWithoutBufferingAndRecovered() {
        let body =
            #"{"jsonrpc":"2.0","id":77,"method":"x","params":{"pad":""# + String(repeating: "a", count: 5000) + "\"}}"
        let input = Self.frame(body) + Self.frame(Self.ping)
        let result = events(input, chunk: 100, maxBody: 1024)
        #expect(problemKinds(result) == [.bodyTooLarge])
        if case .problem(let problem) = result.first { #expect(problem.recoveredID == .number(77)) }
        #expect(messages(result) == [Self.ping])
    }

    @Test(arguments: [1, 5, 1000])
    func bodyShorterThanDeclaredIsCutAtTheNextHeader(chunk: Int) {
        // Declared more than what follows in all (the parser must not wait for bytes that never come)...
        let short = "Content-Length: 500\r\n\r\n\(Self.ping)" + Self.frame(Self.ping)
        #expect(events(short, chunk: chunk) == [message(Self.ping), message(Self.ping)])
        // ...and less than what follows.
        let long = "Content-Length: 60\r\n\r\n\(Self.ping)" + Self.frame(Self.ping) + Self.frame(Self.ping)
        #expect(events(long, chunk: chunk) == [message(Self.ping), message(Self.ping), message(Self.ping)])
    }

    @Test func headerOverEightKiBIsSkippedAndTheNextMessageServed() {
        let header =
            "X-Padding: " + String(repeating: "p", count: 9000) + "\r\nContent-Length: \(Self.ping.utf8.count)\r\n\r\n"
        let result = events(header + Self.ping + Self.frame(Self.ping), chunk: 512)
        #expect(problemKinds(result) == [.headerTooLarge])
        #expect(messages(result) == [Self.ping])
    }

    @Test func invalidUTF8PassesThroughAsABody() {
        let body: [UInt8] = Array(#"{"jsonrpc":"2.0","id":3,"method":""#.utf8) + [0xFF, 0xFE] + Array("\"}".utf8)
        let input = Array("Content-Length: \(body.count)\r\n\r\n".utf8) + body
        #expect(events(input) == [.message(body, .contentLength)])
    }

    @Test func newlineDelimitedWithBlankLinesAndCRLF() {
        let input = "\n\n\(Self.ping)\r\n\r\n   \n\(Self.ping)\n[1]\n"
        #expect(
            events(input) == [
                message(Self.ping, .newlineDelimited), message(Self.ping, .newlineDelimited),
                message("[1]", .newlineDelimited),
            ])
    }

    @Test func junkLineBeforeAJSONLineIsSkipped() {
        let result = events("hello there\n\(Self.ping)\n")
        #expect(problemKinds(result) == [.unexpectedBytes])
        #expect(messages(result) == [Self.ping])
    }

    @Test func truncatedFinalMessageIsReportedWithItsID() {
        let result = events("Content-Length: 100\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"meth")
        #expect(problemKinds(result) == [.truncatedAtEndOfInput])
        if case .problem(let problem) = result.first { #expect(problem.recoveredID == .string("abc")) }
    }

    @Test func cleanEndOfInputReportsNothing() {
        #expect(events(Self.frame(Self.ping) + "\r\n\n").count == 1)
        #expect(events("").isEmpty)
    }

    @Test func unterminatedLastLineIsStillAMessage() {
        #expect(events(Self.ping) == [message(Self.ping, .newlineDelimited)])
    }

    /// Whole in one read (`Int.max`) as well: the limit once held only for a line still being read (found by
    /// the fuzz suite of agent-reliability).
    @Test(arguments: [64, Int.max])
    func overlongLineIsSkipped(chunk: Int) {
        let line = #"{"id":5,"pad":""# + String(repeating: "x", count: 3000) + "\"}\n"
        let result = events(line + Self.ping + "\n", chunk: chunk, maxBody: 1024)
        #expect(problemKinds(result) == [.bodyTooLarge])
        if case .problem(let problem) = result.first { #expect(problem.recoveredID == .number(5)) }
        #expect(messages(result) == [Self.ping])
    }

    @Test func aValidBodyMentioningContentLengthIsNotCut() {
        let body = #"{"jsonrpc":"2.0","id":1,"method":"x","params":{"note":"Content-Length: 12"}}"#
        #expect(events(Self.frame(body)) == [message(body)])
    }
}

@Suite struct LenientIDScannerTests {
    @Test(arguments: [
        (#"{"jsonrpc":"2.0","id":42,"method":"x"}"#, RequestID.number(42)),
        (#"{"id":"a\"b","method":"x"}"#, .string("a\"b")),
        (#"{"params":{"id":7},"id":8}"#, .number(8)),
        (#"{"method":"x","params":{"id":7}"#, nil),
        (#"{"jsonrpc":"2.0","id":-3,"meth"#, .number(-3)),
        (#"{"id":12"#, nil),
        (#"garbage"#, nil),
        (#"{"id":1.5}"#, nil),
    ])
    func scans(input: String, expected: RequestID?) {
        #expect(LenientIDScanner.scan(Array(input.utf8)) == expected)
    }
}
