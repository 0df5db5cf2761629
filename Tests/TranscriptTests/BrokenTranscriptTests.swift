import Foundation
import Testing
import TranscriptReplay

/// Transcripts edited to be wrong (Tests/TranscriptTests/broken): each must fail, and its report must
/// hold every line its `# expect-failure:` comments name, so the harness is shown to catch a different
/// result, an extra or a missing upstream call, and to say where and why.
@Suite struct BrokenTranscriptTests {
    static let files = Paths.transcripts(in: Paths.broken)
    static let marker = "# expect-failure: "

    @Test func thereAreBrokenTranscripts() {
        #expect(Self.files.count >= 5, "\(Self.files)")
    }

    @Test(arguments: files)
    func brokenTranscriptFailsWithItsDiff(_ name: String) async throws {
        let path = Paths.broken.appendingPathComponent(name).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let expected = text.split(separator: "\n").filter { $0.hasPrefix(Self.marker) }.map {
            String($0.dropFirst(Self.marker.count))
        }
        try #require(!expected.isEmpty, "\(name) names no # expect-failure: line")
        let result = await ReplaySlots.shared.run(path, options: ReplayOptions(agent: Paths.agent))
        #expect(!result.passed, "\(name) passed but must fail")
        for line in expected {
            #expect(result.report.contains(line), "the report lacks \"\(line)\":\n\(result.report)")
        }
    }
}
