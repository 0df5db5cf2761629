import Testing

@testable import WireFormats

@Suite struct HexadecimalTests {
    @Test func everyByteReadsBackInEitherCase() {
        let bytes = (0...255).map { UInt8($0) }
        let lower = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        #expect(Hexadecimal.bytes(lower) == bytes)
        #expect(Hexadecimal.bytes(lower.uppercased()) == bytes)
        #expect(Hexadecimal.bytes("") == [])
    }

    @Test(arguments: ["0", "abc", "0g", "g0", " 00", "00 ", "+1", "-1", "0x00", "é0"])
    func anythingElseIsRefused(text: String) {
        #expect(Hexadecimal.bytes(text) == nil)
    }
}
