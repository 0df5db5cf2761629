import Testing

@testable import FakeSmartcar

@Suite struct HTTPRequestParserTests {
    private func requests(_ text: String, byteByByte: Bool) throws -> [HTTPServerRequest] {
        var parser = HTTPRequestParser()
        var result: [HTTPServerRequest] = []
        let pieces: [[UInt8]] = byteByByte ? text.utf8.map { [$0] } : [Array(text.utf8)]
        for piece in pieces {
            parser.append(piece)
            while let event = try parser.next() {
                if case .request(let request) = event { result.append(request) }
            }
        }
        #expect(!parser.hasPartialRequest)
        return result
    }

    @Test(arguments: [false, true])
    func parsesPipelinedRequestsWhateverTheChunking(byteByByte: Bool) throws {
        let text =
            "\r\nPOST /oauth/token?flags=a%3Ab HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Two: a\r\nx-two: b\r\n\r\nhello"
            + "GET http://127.0.0.1:80/v2.0/user HTTP/1.1\r\n\r\n"
            + "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        let parsed = try requests(text, byteByByte: byteByByte)
        #expect(parsed.map(\.method) == ["POST", "GET", "POST"])
        #expect(parsed.map(\.path) == ["/oauth/token", "/v2.0/user", "/c"])
        #expect(parsed[0].rawQuery == "flags=a%3Ab")
        #expect(parsed[0].body == Array("hello".utf8))
        #expect(parsed[0].header("x-two") == "a, b")
        #expect(parsed[2].body == Array("abc".utf8))
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n bad: fold\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET / HTTP/2\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400),
    ])
    func refusesMalformedInput(text: String, status: Int) {
        var parser = HTTPRequestParser()
        parser.append(Array(text.utf8))
        let error = #expect(throws: HTTPParseError.self) { _ = try parser.next() }
        #expect(error?.status == status)
    }

    @Test func boundsChunkedBodies() {
        var parser = HTTPRequestParser(maxBodyBytes: 4)
        parser.append(
            Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n".utf8))
        let error = #expect(throws: HTTPParseError.self) { _ = try parser.next() }
        #expect(error?.status == 413)
    }
}
