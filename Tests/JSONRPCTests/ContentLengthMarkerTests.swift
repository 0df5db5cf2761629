import Testing
@testable import JSONRPC

@Suite struct ContentLengthMarkerTests {
    private func find(_ text: String, startLimit: Int? = nil) -> ContentLengthMarker.Search {
        let bytes = Array(text.utf8)
        return ContentLengthMarker.find(in: bytes, from: 0, startLimit: startLimit ?? bytes.count, end: bytes.count)
    }

    @Test func matchesHeaderLinesOnly() {
        #expect(find("xxContent-Length: 12\r\n") == .found(2))
        #expect(find("CONTENT-LENGTH:\t7 \t\r\nrest") == .found(0))
        #expect(find("content-length:12\r\n") == .found(0))
        #expect(find(#"{"a":"Content-Length: 12"}"#) == .none, "inside a JSON string there is no raw CR")
        #expect(find("Content-Length: \r\n") == .none)
        #expect(find("Content-Length: 1x\r\n") == .none)
        #expect(find("Content-Length: 12\n") == .none)
        #expect(find("Content_Length: 12\r\n") == .none)
    }

    @Test func reportsAnUnfinishedMatch() {
        #expect(find("{}Conte") == .partial(2))
        #expect(find("Content-Length: 12") == .partial(0))
        #expect(find("Content-Length: 12 \r") == .partial(0))
        #expect(find("abContent-Length: 1\r\n", startLimit: 2) == .none, "a marker must start before the limit")
    }

    @Test func trailingWhitespaceAfterTheValueStillResynchronises() {
        var parser = FrameParser()
        let valid = Frames.request(2)
        let bytes = Array("Content-Length: nope\r\n\r\n\(Frames.request(1))content-length:  \(valid.utf8.count) \r\n\r\n\(valid)".utf8)
        let events = parser.events(bytes)
        #expect(events.map(\.problem?.kind) == [.invalidContentLength, nil])
        #expect(events.last?.body == valid)
    }
}
