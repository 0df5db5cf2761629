import Foundation
import Testing
import WireFormats

/// The one JSON string escaper, and the integers written by hand.
@Suite struct JSONTextTests {
    static let pieces = [
        "a", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "😀", "\u{2028}",
        " ",
    ]

    @Test func everyStringOfUpToThreePiecesRoundTripsThroughJSONDecoder() throws {
        var texts = [""]
        for _ in 0..<3 { texts += texts.flatMap { text in Self.pieces.map { text + $0 } } }
        for text in Set(texts) {
            var out: [UInt8] = []
            JSONText.append(text, to: &out)
            #expect(try JSONDecoder().decode(String.self, from: Data(out)) == text)
            #expect(!out.contains(0x0A) && !out.contains(0x00))
            #expect(JSONText.quoted(text) == String(decoding: out, as: UTF8.self))
        }
    }

    /// The bytes the agent has always written: only `"`, `\` and U+0000–U+001F are escaped, the common ones
    /// by letter and the rest as lower-case `\u00xx`; `/`, DEL and non-ASCII are left as they are.
    @Test func knownEscapes() {
        #expect(JSONText.quoted("a/b") == #""a/b""#)
        #expect(JSONText.quoted("q\"b\\") == #""q\"b\\""#)
        #expect(JSONText.quoted("\n\r\t\u{8}\u{C}\u{0}\u{1F}") == #""\n\r\t\u0008\u000c\u0000\u001f""#)
        #expect(JSONText.quoted("\u{7F}é😀") == "\"\u{7F}é😀\"")
    }

    @Test(arguments: [Int64.min, -1, 0, 7, 1_000_000, Int64.max])
    func integers(_ n: Int64) {
        var out: [UInt8] = []
        JSONText.append(n, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == String(n))
    }
}
