import Foundation
import Testing
import WireFormats

/// Known byte vectors: the agent (client) and the fake (server) share this codec, so a round trip alone could
/// hide an encoding bug on both sides at once.
@Suite struct FormCodingTests {
    @Test func escapesLikePythonsQuotePlusWithNothingSafe() {
        #expect(
            FormCoding.escape("aZ09_.-~ :/?#[]@!$&'()*+,;=%é")
                == "aZ09_.-~+%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25%C3%A9")
        #expect(FormCoding.escape("€ 😀\u{0}\u{7F}") == "%E2%82%AC+%F0%9F%98%80%00%7F")
        #expect(FormCoding.encode([("a b", "c&d"), ("e", ""), ("f", "x=y+z")]) == "a+b=c%26d&e=&f=x%3Dy%2Bz")
    }

    @Test func aSpaceCanBePercentEncoded() {
        #expect(
            FormCoding.encode([("redirect_uri", "https://e.com/cb?x=1"), ("s", "a b+c")], space: .percent)
                == "redirect_uri=https%3A%2F%2Fe.com%2Fcb%3Fx%3D1&s=a%20b%2Bc")
    }

    @Test func decodesPlusAndPercentAndKeepsMalformedEscapes() {
        #expect(
            FormCoding.decode("a=x+y%2Bz&b=%E2%82%AC&c&d=%zz&e=%4&f=%4a&=g&h=1=2").map { "\($0.name)=\($0.value)" }
                == ["a=x y+z", "b=€", "c=", "d=%zz", "e=%4", "f=J", "=g", "h=1=2"])
        #expect(FormCoding.decode("a=1&&b=2&").map(\.name) == ["a", "b"])
        #expect(FormCoding.unescape("%F0%9F%98%80%20+%2b") == "😀  +")
    }

    @Test func aRepeatedNameKeepsTheLastValueInADictionary() {
        #expect(FormCoding.decodeDictionary("a=first&b=2&a=last") == ["a": "last", "b": "2"])
    }

    @Test func decodingReversesEncodingEitherWayOfWritingASpace() {
        let text = "aZ09_.-~ :/?#[]@!$&'()*+,;=%é€😀"
        #expect(FormCoding.unescape(FormCoding.escape(text)) == text)
        #expect(FormCoding.unescape(FormCoding.escape(text, space: .percent)) == text)
    }
}
