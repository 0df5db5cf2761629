import Foundation
import Testing
@testable import JSONRPC

/// Well-formed input, however it is split across reads.
@Suite struct FrameParserTests {
    @Test func messageFedOneByteAtATime() {
        var parser = FrameParser()
        let bytes = Frames.framed(Frames.request(1)) + Frames.framed(Frames.request(2))
        let events = parser.events(bytes, chunk: 1)
        #expect(events.map(\.body) == [Frames.request(1), Frames.request(2)])
        #expect(events.map(\.style) == [.contentLength, .contentLength])
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func headerSplitAcrossReads() {
        var parser = FrameParser()
        let body = Frames.request(7)
        #expect(parser.feed(Array("Content-Le".utf8)).isEmpty)
        #expect(parser.feed(Array("ngth: \(body.utf8.count / 10)".utf8)).isEmpty)
        #expect(parser.feed(Array("\(body.utf8.count % 10)\r\n\r\n".utf8)).isEmpty)
        #expect(parser.feed(Array(body.utf8)).map(\.body) == [body])
    }

    @Test func crlfSplitAcrossReads() {
        var parser = FrameParser()
        let body = Frames.request(8)
        #expect(parser.feed(Array("Content-Length: \(body.utf8.count)\r".utf8)).isEmpty)
        #expect(parser.feed(Array("\n\r".utf8)).isEmpty)
        #expect(parser.feed(Array("\n".utf8)).isEmpty)
        #expect(parser.feed(Array(body.utf8)).map(\.body) == [body])
        #expect(parser.finish().isEmpty)
    }

    @Test func contentTypeAndCaseInsensitiveNames() {
        var parser = FrameParser()
        let body = Frames.request(3)
        let bytes = Array("content-length:   \(body.utf8.count) \t\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n\(body)".utf8)
            + Array("CONTENT-LENGTH:\t\(body.utf8.count)\r\n\r\n\(body)".utf8)
        #expect(parser.events(bytes).map(\.body) == [body, body])
    }

    @Test func duplicateEqualContentLengthIsAccepted() {
        var parser = FrameParser()
        let body = Frames.request(4)
        let bytes = Frames.framed(body, headers: "Content-Length: \(body.utf8.count)\r\n")
        #expect(parser.events(bytes).map(\.body) == [body])
    }

    @Test func newlineDelimitedWithBlankLinesAndCRLF() {
        var parser = FrameParser()
        let batch = "[\(Frames.request(2)),\(Frames.request(3))]"
        let bytes = Array("\n\r\n\(Frames.request(1))\r\n\r\n \t\n\(batch)\n\n".utf8)
        let events = parser.events(bytes, chunk: 5)
        #expect(events.map(\.body) == [Frames.request(1), batch])
        #expect(events.map(\.style) == [.newlineDelimited, .newlineDelimited])
    }

    @Test func mixedNewlineDelimitedAndContentLength() {
        var parser = FrameParser()
        let bytes = Frames.line(Frames.request(1)) + Frames.framed(Frames.request(2)) + Array("\r\n".utf8)
            + Frames.line(Frames.request(3)) + Frames.framed(Frames.request(4))
        let events = parser.events(bytes, chunk: 3)
        #expect(events.map(\.body) == (1...4).map { Frames.request($0) })
        #expect(events.map(\.style) == [.newlineDelimited, .contentLength, .newlineDelimited, .contentLength])
    }

    @Test func byteOrderMarkIsSkippedAtAMessageBoundary() {
        var parser = FrameParser()
        let bytes = ASCII.byteOrderMark + Frames.line(Frames.request(1)) + ASCII.byteOrderMark + Frames.framed(Frames.request(2))
        #expect(parser.events(bytes, chunk: 1).map(\.body) == [Frames.request(1), Frames.request(2)])
        var partial = FrameParser()
        #expect(partial.events([0xEF, 0xBB]).map(\.problem?.kind) == [.truncatedAtEndOfInput])
    }

    @Test func cleanEndOfInputReportsNothing() {
        var parser = FrameParser()
        #expect(parser.events(Frames.framed(Frames.request(1)) + Array("\r\n \n".utf8)).count == 1)
        #expect(parser.finish().isEmpty)
        var empty = FrameParser()
        #expect(empty.finish().isEmpty)
    }

    @Test func unterminatedFinalLineIsDeliveredAtEnd() {
        var parser = FrameParser()
        #expect(parser.feed(Array(Frames.request(5).utf8)).isEmpty)
        #expect(parser.finish().map(\.body) == [Frames.request(5)])
    }

    @Test func zeroLengthBodyIsAnEmptyMessage() {
        var parser = FrameParser()
        #expect(parser.events(Array("Content-Length: 0\r\n\r\n".utf8) + Frames.framed(Frames.request(1))).map(\.body) == ["", Frames.request(1)])
    }

    @Test func invalidUTF8IsPassedThroughAndDecodesAsParseError() throws {
        var parser = FrameParser()
        let body: [UInt8] = Array(#"{"jsonrpc":"2.0","method":"m","params":{"x":""#.utf8) + [0xFF, 0xFE] + Array(#""}}"#.utf8)
        let bytes = Array("Content-Length: \(body.count)\r\n\r\n".utf8) + body
        let events = parser.events(bytes)
        #expect(events == [.message(body, .contentLength)])
        guard case .invalid(let id, let error) = MessageDecoder.decode(.init(body)) else {
            Issue.record("invalid UTF-8 decoded as a message")
            return
        }
        #expect(id == nil)
        #expect(error.code == ResponseError.Code.parseError)
    }
}
