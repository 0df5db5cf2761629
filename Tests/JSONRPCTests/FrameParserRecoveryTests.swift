import Testing
@testable import JSONRPC

/// Malformed input: each problem is reported once, with the id when readable, and the next valid message
/// is still delivered.
@Suite struct FrameParserRecoveryTests {
    private let broken = Frames.request(1)
    private let valid = Frames.request(2)

    /// Feeds `bytes` whole, byte by byte and in 7-byte chunks; all three must give the same events.
    private func parse(_ bytes: [UInt8], maxBodyBytes: Int = 4 << 20) -> [FrameEvent] {
        var whole = FrameParser(maxBodyBytes: maxBodyBytes)
        var single = FrameParser(maxBodyBytes: maxBodyBytes)
        var chunked = FrameParser(maxBodyBytes: maxBodyBytes)
        let events = whole.events(bytes)
        #expect(single.events(bytes, chunk: 1) == events)
        #expect(chunked.events(bytes, chunk: 7) == events)
        return events
    }

    private func expectProblemThenValid(_ events: [FrameEvent], _ kind: FramingProblem.Kind, id: RequestID?) {
        #expect(events.count == 2)
        #expect(events.first?.problem?.kind == kind)
        #expect(events.first?.problem?.recoveredID == id)
        #expect(events.last?.body == valid)
    }

    @Test func missingContentLength() {
        let events = parse(Array("Content-Type: application/json\r\n\r\n\(broken)".utf8) + Frames.framed(valid))
        expectProblemThenValid(events, .missingContentLength, id: .number(1))
    }

    @Test(arguments: ["abc", "-5", "+5", "", "12abc", "99999999999999999999999"])
    func invalidContentLength(value: String) {
        let events = parse(Array("Content-Length: \(value)\r\n\r\n\(broken)".utf8) + Frames.framed(valid))
        expectProblemThenValid(events, .invalidContentLength, id: .number(1))
    }

    @Test func conflictingContentLength() {
        let bytes = Array("Content-Length: \(broken.utf8.count)\r\nContent-Length: 12\r\n\r\n\(broken)".utf8) + Frames.framed(valid)
        expectProblemThenValid(parse(bytes), .conflictingContentLength, id: .number(1))
    }

    @Test func resyncOntoNewlineDelimitedMessage() {
        let bytes = Array("Content-Length: x\r\n\r\n\(broken)\n".utf8) + Frames.line(valid)
        expectProblemThenValid(parse(bytes), .invalidContentLength, id: .number(1))
    }

    @Test func hugeContentLengthIsSkippedWithoutBuffering() {
        // Declared far over the cap, but a valid message follows the short body: the marker recovers it.
        let bytes = Array("Content-Length: 5000000\r\n\r\n\(broken)".utf8) + Frames.framed(valid)
        var parser = FrameParser(maxBodyBytes: 1000)
        let events = parser.events(bytes, chunk: 16, finish: false)
        expectProblemThenValid(events, .bodyTooLarge, id: .number(1))
        #expect(parser.bufferedByteCount == 0)
        #expect(parser.finish().isEmpty)
    }

    @Test func bodyOverCapIsSkippedInChunksThenNextMessage() {
        let padding = String(repeating: "x", count: 50_000)
        let big = #"{"jsonrpc":"2.0","id":7,"method":"big","params":{"pad":"\#(padding)"}}"#
        let bytes = Frames.framed(big) + Frames.framed(valid)
        var parser = FrameParser(maxBodyBytes: 1000)
        var events: [FrameEvent] = []
        var start = 0
        while start < bytes.count {
            let end = min(start + 512, bytes.count)
            events += parser.feed(bytes[start..<end])
            #expect(parser.bufferedByteCount < 600, "the skipped body must not be buffered")
            start = end
        }
        events += parser.finish()
        #expect(events.count == 2)
        #expect(events.first?.problem?.kind == .bodyTooLarge)
        #expect(events.first?.problem?.recoveredID == .number(7))
        #expect(events.last?.body == valid)
    }

    @Test func newlineDelimitedLineOverCapIsSkipped() {
        let big = #"{"jsonrpc":"2.0","id":"big","method":"m","params":"\#(String(repeating: "y", count: 5000))"}"#
        let bytes = Frames.line(big) + Frames.line(valid)
        var parser = FrameParser(maxBodyBytes: 1000)
        let events = parser.events(bytes, chunk: 100)
        #expect(events.count == 2)
        #expect(events.first?.problem?.kind == .bodyTooLarge)
        #expect(events.first?.problem?.recoveredID == .string("big"))
        #expect(events.last?.body == valid)
        #expect(parse(bytes, maxBodyBytes: 1000) == events)
    }

    @Test func bodyShorterThanDeclaredWithMoreBytesFollowing() {
        // 200 declared, 35 sent, then a whole valid frame: more than 200 bytes arrive in total.
        let cut = String(broken.dropLast(5))
        let bytes = Array("Content-Length: 200\r\n\r\n\(cut)".utf8) + Frames.framed(valid) + Frames.framed(String(repeating: " ", count: 300))
        let events = parse(bytes)
        #expect(events.map(\.body) == [cut, valid, String(repeating: " ", count: 300)])
    }

    @Test func bodyShorterThanDeclaredAndNothingMore() {
        // 500 declared; fewer than 500 bytes ever arrive, yet the valid message is delivered at once.
        let cut = String(broken.dropLast(5))
        var parser = FrameParser()
        let events = parser.events(Array("Content-Length: 500\r\n\r\n\(cut)".utf8) + Frames.framed(valid), finish: false)
        #expect(events.map(\.body) == [cut, valid])
        #expect(parser.finish().isEmpty)
    }

    @Test func headerBlockOverLimitWithContentLengthSkipsItsBody() {
        let header = "Content-Length: \(broken.utf8.count)\r\nX-Padding: \(String(repeating: "a", count: 9000))\r\n\r\n"
        let events = parse(Array(header.utf8) + Array(broken.utf8) + Frames.framed(valid))
        expectProblemThenValid(events, .headerTooLarge, id: .number(1))
    }

    @Test func headerBlockOverLimitWithoutContentLengthResyncs() {
        let header = "X-Padding: \(String(repeating: "a", count: 9000))\r\nX-More: b\r\n\r\n"
        let events = parse(Array(header.utf8) + Array(broken.utf8) + Frames.framed(valid))
        expectProblemThenValid(events, .headerTooLarge, id: .number(1))
    }

    @Test func longRunOfJunkWithoutNewlineThenMessage() {
        let junk = String(repeating: "z", count: 20_000)
        var parser = FrameParser()
        let events = parser.events(Array(junk.utf8) + Frames.framed(valid), chunk: 1000)
        expectProblemThenValid(events, .unexpectedBytes, id: nil)
        #expect(parse(Array(junk.utf8) + Frames.framed(valid)) == events)
    }

    @Test func junkLineBeforeNewlineDelimitedMessage() {
        expectProblemThenValid(parse(Array("hello world\r\n".utf8) + Frames.line(valid)), .unexpectedBytes, id: nil)
        expectProblemThenValid(parse(Array("hello: world\r\n".utf8) + Frames.line(valid)), .unexpectedBytes, id: nil)
        expectProblemThenValid(parse(Array("junk".utf8) + Frames.framed(valid)), .unexpectedBytes, id: nil)
    }

    @Test func truncatedFinalMessageIsReportedWithItsID() {
        var parser = FrameParser()
        let partial = #"{"jsonrpc":"2.0","id":"abc","method":"#
        #expect(parser.feed(Array("Content-Length: 100\r\n\r\n\(partial)".utf8)).isEmpty)
        let events = parser.finish()
        #expect(events.count == 1)
        #expect(events.first?.problem?.kind == .truncatedAtEndOfInput)
        #expect(events.first?.problem?.recoveredID == .string("abc"))
    }

    @Test func truncatedHeaderIsReported() {
        var parser = FrameParser()
        #expect(parser.feed(Array("Content-Length: 1".utf8)).isEmpty)
        #expect(parser.finish().map(\.problem?.kind) == [.truncatedAtEndOfInput])
    }

    @Test func skipCutShortByEndOfInputIsReportedOnce() {
        var parser = FrameParser()
        let events = parser.events(Array("Content-Length: nope\r\n\r\n[1,2".utf8))
        #expect(events.map(\.problem?.kind) == [.invalidContentLength])
    }
}
