import AgentTestSupport
import Foundation
import Testing
import WireFormats

@testable import JSONRPC

/// `RequestScanner` reads the common envelope without `JSONDecoder`; whatever it declines is left to
/// `Envelope`. It must accept the messages clients really send, and never accept one that `JSONDecoder`
/// would refuse or read differently.
@Suite struct RequestScannerTests {
    func scan(_ text: String) -> RequestScanner.Request? {
        Array(text.utf8).withUnsafeBufferPointer { RequestScanner.scan($0) }
    }

    func params(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard let range = bytes.withUnsafeBufferPointer({ RequestScanner.scan($0) })?.params else { return nil }
        return String(decoding: bytes[range], as: UTF8.self)
    }

    @Test func readsTheRequestsClientsSend() {
        #expect(scan(#"{"jsonrpc":"2.0","id":1,"method":"getToken","params":{"key":"car"}}"#)?.id == .number(1))
        #expect(scan(#"{"jsonrpc":"2.0","id":1,"method":"getToken","params":{"key":"car"}}"#)?.method == "getToken")
        #expect(params(#"{"jsonrpc":"2.0","id":1,"method":"getToken","params":{"key":"car"}}"#) == #"{"key":"car"}"#)
        #expect(
            scan(#" { "method" : "ping" , "id" : "a-1" , "jsonrpc" : "2.0" } "# + "\r\n")
                == .init(id: .string("a-1"), method: "ping", params: nil))
        #expect(scan(#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#)?.id == .null)
        #expect(scan(#"{"jsonrpc":"2.0","id":-42,"method":"ping"}"#)?.id == .number(-42))
        #expect(
            scan(#"{"jsonrpc":"2.0","id":999999999999999999,"method":"ping"}"#)?.id == .number(999_999_999_999_999_999))
        #expect(
            scan(#"{"jsonrpc":"2.0","method":"initialized"}"#) == .init(id: nil, method: "initialized", params: nil))
        #expect(
            params(
                #"{"jsonrpc":"2.0","id":1,"method":"m","params":[1,{"a":[true,false,null]},"\u00e9\ud83d\ude00 é"]}"#)
                == #"[1,{"a":[true,false,null]},"\u00e9\ud83d\ude00 é"]"#)
        #expect(
            params(#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"n":-0.5e+10,"s":"a\"\\\/\b\f\n\r\t"}}"#) != nil)
        #expect(scan(#"{"jsonrpc":"2.0","id":1,"method":"m","extra":{"deep":[[[]]]}}"#)?.method == "m")
    }

    @Test(arguments: [
        // Not JSON at all, or not quite.
        "", "{", "}", "{}", "[]", "42", "\"x\"", #"{"jsonrpc":"2.0","id":1,"method":"m"} x"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m",}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m""#, #"{"jsonrpc":"2.0" "id":1,"method":"m"}"#,
        #"{"jsonrpc":"2.0","id":01,"method":"m"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1.}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":tru}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":"\x"}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":"\ud800"}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":"\udc00"}}"#,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"a\":\"\u{1}\"}}",
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":{'a':1}}"#,
        "\u{FEFF}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}",
        // JSON, but left to Envelope: errors to report, or spellings it does not vouch for.
        #"{"id":1,"method":"m"}"#, #"{"jsonrpc":"1.0","id":1,"method":"m"}"#, #"{"jsonrpc":2.0,"id":1,"method":"m"}"#,
        #"{"jsonrpc":"2\u002e0","id":1,"method":"m"}"#, #"{"jsonrpc":"2.0","id":1}"#,
        #"{"jsonrpc":"2.0","id":1,"method":7}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"a\/b"}"#, #"{"jsonrpc":"2.0","id":1.0,"method":"m"}"#,
        #"{"jsonrpc":"2.0","id":1e2,"method":"m"}"#,
        #"{"jsonrpc":"2.0","id":-0,"method":"m"}"#, #"{"jsonrpc":"2.0","id":1234567890123456789,"method":"m"}"#,
        #"{"jsonrpc":"2.0","id":true,"method":"m"}"#, #"{"jsonrpc":"2.0","id":{},"method":"m"}"#,
        #"{"jsonrpc":"2.0","id":"a\"b","method":"m"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":5}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":null,"params":{}}"#,
        #"{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}"#, #"{"jsonrpc":"2.0","id":1,"method":"m","method":"n"}"#,
        #"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"m"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":{},"params":{}}"#,
        #"{"jsonrpc":"2.0","\u0069d":1,"method":"m"}"#, #"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        #"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#,
        #"{"jsonrpc":"2.0","id":1,"method":"m","params":"# + String(repeating: "[", count: 70)
            + String(repeating: "]", count: 70) + "}",
    ])
    func declines(_ text: String) {
        #expect(scan(text) == nil)
    }

    /// Whatever the scanner accepts, `JSONDecoder` reads as the same valid request; checked on thousands of
    /// seeded mutations of valid requests (cut, doubled, replaced and inserted bytes).
    @Test func neverAcceptsWhatJSONDecoderRefusesOrReadsDifferently() throws {
        let seeds = [
            #"{"jsonrpc":"2.0","id":1,"method":"getToken","params":{"key":"car","minValidity":60,"forceRefresh":false}}"#,
            #"{"jsonrpc":"2.0","id":"x-9","method":"storeToken","params":{"key":"k","accessToken":"a\/b","expiresAt":"2030-01-01T00:00:00Z"}}"#,
            #"{"method":"$/cancelRequest","jsonrpc":"2.0","params":{"id":[1,-2.5e3,null,true,{"é":"\u00e9"}]}}"#,
        ]
        let alphabet =
            Array(#"{}[]":,.-+eE0123456789 \/"nulltruefalse"#.utf8) + [0x0A, 0x00, 0xC3, 0xA9, 0xFF, 0xED, 0xA0, 0x80]
        var random = SeededGenerator(seed: 7)
        var accepted = 0
        for round in 0..<6000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            for _ in 0..<(1 + Int(random.next() % 3)) {
                let at = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 4 {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: at)
                case 2: bytes[at] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                default: bytes.insert(bytes[at], at: at)
                }
            }
            guard let scanned = bytes.withUnsafeBufferPointer({ RequestScanner.scan($0) }) else { continue }
            accepted += 1
            let text = String(decoding: bytes, as: UTF8.self)
            // JSONDecoder parses the whole text before decoding: success means it is valid JSON.
            let envelope = try #require(
                try? JSONDecoder().decode(Envelope.self, from: Data(bytes)), "JSONDecoder refuses \(text)")
            let message = try #require(try? envelope.incoming(raw: bytes), "not a valid request for Envelope: \(text)")
            #expect(message.id == scanned.id, "\(text)")
            #expect(message.method == scanned.method, "\(text)")
            #expect(message.hasParams == (scanned.params != nil), "\(text)")
        }
        #expect(accepted > 100)
    }
}

@Suite struct FlatParamsTests {
    func flat(_ params: String) -> FlatParams? {
        let text = #"{"jsonrpc":"2.0","id":1,"method":"m","params":"# + params + "}"
        let bytes = Array(text.utf8)
        let request = bytes.withUnsafeBufferPointer { RequestScanner.scan($0) }!
        return IncomingMessage(
            id: request.id, method: request.method, raw: bytes, hasParams: true, paramsRange: request.params
        ).flatParams
    }

    @Test func readsFlatObjects() throws {
        let params = try #require(
            flat(#"{ "key" : "car", "minValidity": 60.5, "n": -3e2, "force": true, "off": false, "none": null }"#))
        #expect(params["key"] == .string("car"))
        #expect(params["minValidity"] == .number(60.5))
        #expect(params["n"] == .number(-300))
        #expect(params["force"] == .bool(true))
        #expect(params["off"] == .bool(false))
        #expect(params["none"] == .null)
        #expect(params["missing"] == nil)
        #expect(flat("{}")?["key"] == nil)
        let absent = IncomingMessage(id: .number(1), method: "m", raw: [], hasParams: false)
        #expect(absent.flatParams?["key"] == nil && absent.flatParams != nil)
    }

    @Test(arguments: [
        #"{"a":{}}"#, #"{"a":[1]}"#, #"{"a":"\n"}"#, #"{"\u0061":1}"#, #"{"a":1,"a":2}"#, "[1]", #"{"a":1e999}"#,
    ])
    func declinesAnythingElse(_ params: String) {
        #expect(flat(params) == nil)
    }

    @Test func aMessageReadByEnvelopeOffersNone() throws {
        let bytes = Array(#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1}}"#.utf8)
        let message = try JSONDecoder().decode(Envelope.self, from: Data(bytes)).incoming(raw: bytes)
        #expect(message.flatParams == nil)
        #expect(message.rawParams == ["a": 1])
    }
}

/// Responses as written by hand onto the wire.
@Suite struct ResponseEnvelopeTests {
    @Test func responseEnvelopes() throws {
        let cases: [(Response, String)] = [
            (
                Response(id: .number(7), outcome: .encodedResult(Array("{}".utf8))),
                #"{"jsonrpc":"2.0","id":7,"result":{}}"#
            ),
            (
                Response(id: .string("a\"b"), outcome: .result(JSONValue.null)),
                #"{"jsonrpc":"2.0","id":"a\"b","result":null}"#
            ),
            (
                Response(id: .null, outcome: .error(.invalidRequest("bad \"x\""))),
                #"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad \"x\"","data":{"kind":"invalidRequest"}}}"#
            ),
            (
                Response(
                    id: .number(1),
                    outcome: .error(ResponseError(code: -32010, message: "m", data: ["kind": "unknownKey"]))),
                #"{"jsonrpc":"2.0","id":1,"error":{"code":-32010,"message":"m","data":{"kind":"unknownKey"}}}"#
            ),
        ]
        for (response, expected) in cases {
            #expect(String(decoding: response.body, as: UTF8.self) == expected)
        }
    }
}
