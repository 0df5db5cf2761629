import Foundation
import Testing
import TranscriptReplay

/// The examples of Protocol/transcripts/README.md (its ```transcript blocks) replayed as written, so
/// the document someone learns the format from stays true.
@Suite struct ReadmeExampleTests {
    @Test func everyExampleInTheReadmePasses() async throws {
        let readme = try String(contentsOf: Paths.scenarios.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = readme.components(separatedBy: "```transcript\n").dropFirst().map {
            $0.components(separatedBy: "```").first ?? ""
        }
        try #require(!blocks.isEmpty, "the README has no transcript example")
        for (index, block) in blocks.enumerated() {
            let transcript = try Transcript.parse(block, name: "README example \(index + 1)")
            let result = await Replay.run(transcript, options: ReplayOptions(agent: Paths.agent))
            #expect(result.passed, "\(result.report)")
        }
    }
}
