import Testing
import WireFormats

@testable import TranscriptReplay

/// The matching rules the README promises, one by one.
@Suite struct MatcherTests {
    func json(_ text: String) -> JSONValue { try! JSONParser.parse(text) }

    func match(
        _ pattern: String, _ actual: String, _ bindings: inout [String: JSONValue],
        binding: Bool = true
    ) -> Mismatch? {
        Matcher.match(json(pattern), json(actual), binding: binding, bindings: &bindings)
    }

    @Test func aCaptureBindsOnFirstSightAndMustBeEqualAfter() {
        var bindings: [String: JSONValue] = [:]
        #expect(match(#"{"a": "{{token}}"}"#, #"{"a": "xyz"}"#, &bindings) == nil)
        #expect(bindings["token"] == "xyz")
        #expect(match(#"{"b": "{{token}}"}"#, #"{"b": "xyz"}"#, &bindings) == nil)
        let mismatch = match(#"{"b": "{{token}}"}"#, #"{"b": "other"}"#, &bindings)
        #expect(mismatch?.description == #"at $.b: expected "{{token}}" (token = "xyz"), got "other""#)
    }

    @Test func aMismatchBindsNothing() {
        var bindings: [String: JSONValue] = [:]
        #expect(match(#"{"a": "{{x}}", "b": 1}"#, #"{"a": "v", "b": 2}"#, &bindings) != nil)
        #expect(bindings.isEmpty)
    }

    @Test func objectsAreClosedUnlessTheyAllowMore() {
        var bindings: [String: JSONValue] = [:]
        #expect(
            match(#"{"a": 1}"#, #"{"b": 2, "a": 1}"#, &bindings)?.problem.hasPrefix(#"unexpected member "b""#) == true)
        #expect(match(#"{"a": 1, "...": true}"#, #"{"b": 2, "a": 1}"#, &bindings) == nil)
        #expect(
            match(#"{"a": 1, "c": 3}"#, #"{"a": 1}"#, &bindings)?.problem.hasPrefix(#"member "c" is missing"#) == true)
        #expect(match(#"[1, 2]"#, #"[1, 2, 3]"#, &bindings)?.path == "$[2]")
    }

    @Test func numbersCompareByValue() {
        var bindings: [String: JSONValue] = [:]
        #expect(match("1", "1.0", &bindings) == nil)
        #expect(match("1", "2", &bindings) != nil)
    }

    @Test(arguments: [
        ("{{*}}", #"{"any": "thing"}"#, true), ("{{*string}}", "3", false), ("{{*int}}", "3", true),
        ("{{*int}}", "3.5", false),
        ("{{*number}}", "3.5", true), ("{{*bool}}", "false", true), ("{{*time}}", #""2026-11-25T10:00:00Z""#, true),
        ("{{*time}}", #""2026-11-25T10:00:00.123+02:00""#, true), ("{{*time}}", #""yesterday""#, false),
    ])
    func wildcardsCheckTheirType(_ wildcard: String, _ actual: String, _ matches: Bool) {
        var bindings: [String: JSONValue] = [:]
        #expect((match("\"\(wildcard)\"", actual, &bindings) == nil) == matches)
    }

    @Test func holesInsideAStringCaptureTheirPart() {
        var bindings: [String: JSONValue] = ["upstream": "http://127.0.0.1:9"]
        let pattern = #""{{upstream}}/oauth/authorize?client_id={{id}}&state={{state}}&again={{state}}""#
        #expect(
            match(pattern, #""http://127.0.0.1:9/oauth/authorize?client_id=c1&state=s.1&again=s.1""#, &bindings) == nil)
        #expect(bindings["id"] == "c1" && bindings["state"] == "s.1")
        // The second sight of a name inside one string must repeat the first.
        var fresh: [String: JSONValue] = ["upstream": "http://127.0.0.1:9"]
        #expect(match(pattern, #""http://127.0.0.1:9/oauth/authorize?client_id=c1&state=s1&again=s2""#, &fresh) != nil)
        #expect(match(#""{{*}} seconds""#, #""retry in 5 seconds""#, &fresh) == nil)
    }

    @Test func requestPatternsNeverBind() {
        var bindings: [String: JSONValue] = ["refresh_1": "r1"]
        #expect(
            match(#"{"refresh_token": "{{refresh_1}}"}"#, #"{"refresh_token": "r1"}"#, &bindings, binding: false) == nil
        )
        #expect(
            match(#"{"refresh_token": "{{refresh_2}}"}"#, #"{"refresh_token": "r1"}"#, &bindings, binding: false) != nil
        )
        #expect(match(#"{"u": "x{{refresh_2}}"}"#, #"{"u": "xr1"}"#, &bindings, binding: false) != nil)
        #expect(bindings["refresh_2"] == nil)
    }

    @Test func fillingUsesBoundValuesGeneratesTheRestAndRefusesWildcards() throws {
        var bindings: [String: JSONValue] = ["n": 7]
        let filled = try Filler.fill(
            json(#"{"a": "{{n}}", "b": "id-{{n}}", "c": "{{fresh}}", "d": "{{fresh}}"}"#), bindings: &bindings)
        #expect(filled["a"] == 7)
        #expect(filled["b"] == "id-7")
        #expect(filled["c"]?.stringValue?.hasPrefix("fresh-") == true)
        #expect(filled["c"] == filled["d"])
        #expect(throws: Filler.Failure.self) { try Filler.fill(json(#"{"a": "{{*}}"}"#), bindings: &bindings) }
        #expect(throws: Filler.Failure.self) { try Filler.fill(json(#"{"a": 1, "...": true}"#), bindings: &bindings) }
    }

    @Test func malformedPlaceholdersAreLoadErrorsWithTheirLine() {
        #expect(throws: Transcript.LoadError.self) {
            try Transcript.parse("{}\n{\"send\": {\"id\": \"{{oops\"}}", name: "t")
        }
        do {
            _ = try Transcript.parse("{}\n\n{\"expect\": {\"id\": 1, \"result\": \"{{*date}}\"}}", name: "t")
            Issue.record("a bad wildcard was accepted")
        } catch {
            #expect(error.description.hasPrefix("t:3: unknown wildcard {{*date}}"))
        }
    }
}
