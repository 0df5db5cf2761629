import Testing
@testable import JSONRPC

@Suite struct LenientIDScannerTests {
    private func scan(_ text: String) -> RequestID? { LenientIDScanner.scan(Array(text.utf8)) }

    @Test func numberAndString() {
        #expect(scan(#"{"jsonrpc":"2.0","id":42,"method":"m"}"#) == .number(42))
        #expect(scan(#" { "id" : -7 }"#) == .number(-7))
        #expect(scan(#"{"id":"a\"b\\c\u00e9","method":"m"}"#) == .string("a\"b\\cé"))
    }

    @Test func nestedIDIsNotTaken() {
        #expect(scan(#"{"jsonrpc":"2.0","method":"m","params":{"id":5}}"#) == nil)
        #expect(scan(#"{"params":[{"id":5}],"id":9}"#) == .number(9))
        #expect(scan(#"{"method":"id","params":"id","x":{"id":1}}"#) == nil)
    }

    @Test func brokenJSON() {
        #expect(scan(#"{"jsonrpc":"2.0","id":12,"method":"m","params":{"a":"#) == .number(12))
        #expect(scan(#"{"jsonrpc":"2.0","method":"m","params":{"a":[1,2,"#) == nil)
        #expect(scan(#"{"id":12"#) == nil, "an unterminated number might be longer")
        #expect(scan(#"{"id":"abc"#) == nil)
        #expect(scan(#"{"id":1.5,"method":"m"}"#) == nil)
        #expect(scan(#"{"id":null}"#) == nil)
        #expect(scan(#"[{"id":1}]"#) == nil)
        #expect(scan("garbage \"id\": 3,") == nil)
        #expect(scan(#"{"id":99999999999999999999999,"method":"m"}"#) == nil)
        #expect(scan("") == nil)
    }
}
