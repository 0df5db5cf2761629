import Testing

@testable import TranscriptRecording

/// The recorder's placeholders (the JSON text of transcripts is tested in WireFormatsTests).
@Suite struct PlaceholdersTests {
    @Test func placeholdersAreStableAndReplacedInsideLongerText() {
        var placeholders = Placeholders()
        placeholders.fix("s3cret-value", as: "client_secret")
        #expect(placeholders.placeholder(for: "token-aaaaaa", kind: "access") == "{{access_1}}")
        #expect(placeholders.placeholder(for: "token-aaaaaa", kind: "access") == "{{access_1}}")
        #expect(placeholders.placeholder(for: "token-bbbbbb", kind: "access") == "{{access_2}}")
        #expect(
            placeholders.replacingKnown(in: "Invalid token-bbbbbb for s3cret-value")
                == "Invalid {{access_2}} for {{client_secret}}")
        // A short value is replaced only where it stands alone.
        #expect(placeholders.placeholder(for: "abc", kind: "code") == "{{code_1}}")
        #expect(placeholders.replacingKnown(in: "abc") == "{{code_1}}")
        #expect(placeholders.replacingKnown(in: "abcdefgh") == "abcdefgh")
    }
}
