import Testing
import WireFormats

/// The order-keeping parser (with transcripts' `#` comments) and the printer.
@Suite struct JSONParserPrinterTests {
    @Test func aSequenceKeepsOrderSkipsCommentsAndKnowsItsLines() throws {
        let text = """
            # a comment
            {"b": 1, "a": "# not a comment"}

            {"x": [1,
                   2]}  # trailing comment
            """
        let values = try JSONParser.sequence(text)
        #expect(values.map(\.line) == [2, 4])
        #expect(values[0].value.objectValue?.keys == ["b", "a"])
        #expect(values[0].value["a"] == "# not a comment")
        #expect(values[1].value["x"] == [1, 2])
    }

    @Test func plainJSONHasNoComments() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\"a\": 1} # no") }
    }

    @Test func printedTextReadsBackTheSame() throws {
        let value = try JSONParser.parse(
            #"{"z": "line\nbreak \"quoted\" \u0001", "a": [1, 2.5, true, null], "n": {"deep": {}}}"#)
        #expect(try JSONParser.parse(value.compactText) == value)
        #expect(try JSONParser.parse(value.prettyText(width: 20)) == value)
        #expect(value.inlineText.hasPrefix(#"{"z": "#))
    }

    @Test func compactTextKeepsTheOrderWrittenAndExplicitNulls() {
        let body: JSONValue = .object([
            "type": "RATE_LIMIT", "code": nil, "status": 429, "resolution": ["type": "LATER"],
        ])
        #expect(body.compactText == #"{"type":"RATE_LIMIT","code":null,"status":429,"resolution":{"type":"LATER"}}"#)
        #expect(JSONValue.object(["b": 1, "a": 2]).compactText == #"{"b":1,"a":2}"#)
    }
}
