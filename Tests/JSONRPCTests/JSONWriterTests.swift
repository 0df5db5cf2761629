import Foundation
import Testing
@testable import JSONRPC

@Suite struct JSONWriterTests {
    private func written(_ value: JSONValue) throws -> String {
        var out: [UInt8] = []
        try JSONWriter.write(value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func escapesOnlyWhatJSONRequires() throws {
        #expect(try written("a/b é😀") == #""a/b é😀""#)
        #expect(try written("q\"b\\n\nr\rt\t\u{01}\u{1F}") == #""q\"b\\n\nr\rt\t\u0001\u001f""#)
        #expect(try written([1, -2, 1.5, true, nil, []]) == "[1,-2,1.5,true,null,[]]")
        #expect(try written(["k": ["n": 1]]) == #"{"k":{"n":1}}"#)
    }

    @Test func roundTripsThroughJSONDecoder() throws {
        let value: JSONValue = ["s": "x\"y\\z\u{7}/é", "a": [1, 2.25, false, nil], "o": ["deep": ["deeper": "v"]], "n": -9_007_199_254_740_993]
        var out: [UInt8] = []
        try JSONWriter.write(value, into: &out)
        #expect(try JSONDecoder().decode(JSONValue.self, from: Data(out)) == value)
    }

    @Test func refusesNumbersJSONCannotHold() {
        #expect(throws: JSONWriter.NonFiniteNumber.self) { try written(.double(.infinity)) }
        #expect(throws: JSONWriter.NonFiniteNumber.self) { try written(["x": .double(.nan)]) }
    }

    @Test func decodesStringLiteralsWithEscapes() {
        let literal = Array(#"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800x"#.utf8)
        let text = literal.withUnsafeBufferPointer { JSONString.decode($0, 0..<literal.count) }
        #expect(text == "a\"b\\c/d\u{8}\u{C}\n\r\té😀\u{FFFD}x")
    }
}
