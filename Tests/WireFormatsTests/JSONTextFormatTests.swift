import Testing
import TranscriptFormat
@testable import TranscriptRecording

/// The transcript text format and the recorder's placeholders.
@Suite struct FormatTests {
    @Test func aSequenceKeepsOrderSkipsCommentsAndKnowsItsLines() throws {
        let text = """
            # a comment
            {"b": 1, "a": "# not a comment"}

            {"x": [1,
                   2]}  # trailing comment
            """
        let values = try JSONParser.sequence(text)
        #expect(values.map(\.line) == [2, 4])
        #expect(values[0].value.objectValue?.map(\.key) == ["b", "a"])
        #expect(values[0].value["a"] == "# not a comment")
        #expect(values[1].value["x"] == [1, 2])
    }

    @Test func plainJSONHasNoComments() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("{\"a\": 1} # no") }
    }

    @Test func printedTextReadsBackTheSame() throws {
        let value = try JSONParser.parse(#"{"z": "line\nbreak \"quoted\" \u0001", "a": [1, 2.5, true, null], "n": {"deep": {}}}"#)
        #expect(try JSONParser.parse(value.compactText) == value)
        #expect(try JSONParser.parse(value.prettyText(width: 20)) == value)
        #expect(value.inlineText.hasPrefix(#"{"z": "#))
    }

    @Test func placeholdersAreStableAndReplacedInsideLongerText() {
        var placeholders = Placeholders()
        placeholders.fix("s3cret-value", as: "client_secret")
        #expect(placeholders.placeholder(for: "token-aaaaaa", kind: "access") == "{{access_1}}")
        #expect(placeholders.placeholder(for: "token-aaaaaa", kind: "access") == "{{access_1}}")
        #expect(placeholders.placeholder(for: "token-bbbbbb", kind: "access") == "{{access_2}}")
        #expect(placeholders.replacingKnown(in: "Invalid token-bbbbbb for s3cret-value") == "Invalid {{access_2}} for {{client_secret}}")
        // A short value is replaced only where it stands alone.
        #expect(placeholders.placeholder(for: "abc", kind: "code") == "{{code_1}}")
        #expect(placeholders.replacingKnown(in: "abc") == "{{code_1}}")
        #expect(placeholders.replacingKnown(in: "abcdefgh") == "abcdefgh")
    }
}
