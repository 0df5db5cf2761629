import Foundation
import Testing
@testable import JSONRPC

@Suite struct JSONScannerTests {
    private func scan(_ bytes: [UInt8]) -> JSONScanner.TopLevel? {
        bytes.withUnsafeBufferPointer { JSONScanner.scan($0) }
    }

    private func accepts(_ text: String) -> Bool { scan(Array(text.utf8)) != nil }

    private func decoderAccepts(_ bytes: [UInt8]) -> Bool {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))) != nil
    }

    @Test(arguments: [
        "{}", "[]", " 0 ", "-0", "1.5e-3", "-12E+2", #""é😀""#, #""\u00e9\ud83d\ude00\n\/\\\"""#, "true", "null",
        #"{"a":[1,{"b":null}],"c":"d"}"#, "\r\n\t[ 1 , 2 ]\n", "\u{FEFF}{}", String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
    ])
    func acceptsValidJSON(text: String) {
        #expect(accepts(text))
        #expect(decoderAccepts(Array(text.utf8)))
    }

    @Test(arguments: [
        "", "  ", "01", "1.", ".5", "+1", "1e", "--1", "{a:1}", "'x'", #""\x""#, #""\u12""#,
        "\"a\u{01}b\"", #""abc"#, #""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, #"{"a" 1}"#, "[1 2]", "tru", "nul", "NaN", "Infinity", "{} {}", "[", "}",
        String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
    ])
    func rejectsInvalidJSON(text: String) {
        #expect(!accepts(text))
        #expect(!decoderAccepts(Array(text.utf8)))
    }

    /// Stricter than `JSONDecoder`, which tolerates a trailing comma.
    @Test func rejectsTrailingCommas() {
        #expect(!accepts(#"{"a":1,}"#))
        #expect(!accepts("[1,]"))
        #expect(!accepts("[1 , ]"))
    }

    @Test(arguments: [[0x22, 0x80, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22]] as [[UInt8]])
    func rejectsInvalidUTF8(bytes: [UInt8]) {
        #expect(scan(bytes) == nil)
        #expect(!decoderAccepts(bytes))
    }

    @Test func reportsTopLevelMembersAndElements() {
        let text = Array(#" {"id" : 7, "params":{"x":[1]}, "m":"a\"b"} "#.utf8)
        guard case .object(let members) = scan(text) else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.value.kind) == [.number, .object, .string])
        #expect(members.map { String(decoding: text[$0.key], as: UTF8.self) } == ["id", "params", "m"])
        #expect(members.map { String(decoding: text[$0.value.range], as: UTF8.self) } == ["7", #"{"x":[1]}"#, #""a\"b""#])
        #expect(scan(Array("[1, {}, \"x\"]".utf8)) == .array([.init(kind: .number, range: 1..<2), .init(kind: .object, range: 4..<6), .init(kind: .string, range: 8..<11)]))
    }

    /// Mutations of valid messages are accepted exactly when `JSONDecoder` accepts them, except that a
    /// trailing comma (which `JSONDecoder` tolerates) is rejected.
    @Test func agreesWithJSONDecoderOnMutatedMessages() {
        var random = SeededGenerator(seed: 99)
        let seeds = [
            #"{"jsonrpc":"2.0","id":12,"method":"getToken","params":{"key":"a/b","minValidity":60.5,"flags":[true,false,null]}}"#,
            #"[{"jsonrpc":"2.0","id":"x\u00e9","method":"m"},{"jsonrpc":"2.0","method":"n","params":[1,-2e3,"é"]}]"#,
        ].map { Array($0.utf8) }
        let alphabet = Array(#"{}[]:,"\/ 0123456789.-+eEtrufalsn\u"#.utf8) + [0x80, 0xC3, 0xA9, 0x01, 0x0A]
        var disagreements: [String] = []
        for _ in 0..<3000 {
            var bytes = seeds[Int.random(in: 0..<seeds.count, using: &random)]
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes.remove(at: position)
                case 1: bytes.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &random)], at: position)
                default: bytes[position] = alphabet[Int.random(in: 0..<alphabet.count, using: &random)]
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            let trailingComma = text.replacingOccurrences(of: " ", with: "").contains(",]") || text.replacingOccurrences(of: " ", with: "").contains(",}")
            switch (scan(bytes) != nil, decoderAccepts(bytes)) {
            case (true, false): disagreements.append(text)
            case (false, true) where !trailingComma: disagreements.append(text)
            default: break
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
    }
}
