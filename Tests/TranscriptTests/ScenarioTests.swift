import Foundation
import Testing
import TranscriptReplay

/// Every scenario of Protocol/transcripts replayed against the real binary.
@Suite struct ScenarioTests {
    static let files = Paths.transcripts(in: Paths.scenarios)

    @Test func theSuiteHasAtLeastThirtyScenarios() {
        #expect(Self.files.count >= 30, "\(Self.files)")
    }

    @Test(arguments: files)
    func scenarioPasses(_ name: String) async {
        let result = await ReplaySlots.shared.run(
            Paths.scenarios.appendingPathComponent(name).path, options: ReplayOptions(agent: Paths.agent))
        #expect(result.passed, "\(result.report)")
    }
}
