import AgentTestSupport
import Foundation
import Testing
import TranscriptReplay

/// Every scenario of Protocol/transcripts replayed against the real binary; those whose agents use a store
/// (`{{store}}`) also with a PostgreSQL store, a fresh database of the test process's cluster each.
@Suite struct ScenarioTests {
    static let files = Paths.transcripts(in: Paths.scenarios)
    /// The rest run with `--store memory`: the store's backend plays no part in them.
    static let filesWithStore = files.filter { name in
        let text = try? String(contentsOf: Paths.scenarios.appendingPathComponent(name), encoding: .utf8)
        return text?.contains("{{store}}") == true
    }

    @Test func theSuiteHasAtLeastThirtyScenarios() {
        #expect(Self.files.count >= 30, "\(Self.files)")
        #expect(Self.filesWithStore.count >= 15, "\(Self.filesWithStore)")
    }

    @Test(arguments: files)
    func scenarioPasses(_ name: String) async {
        let result = await ReplaySlots.shared.run(
            Paths.scenarios.appendingPathComponent(name).path, options: ReplayOptions(agent: Paths.agent))
        #expect(result.passed, "\(result.report)")
    }

    @Test(arguments: filesWithStore)
    func scenarioPassesOnPostgreSQL(_ name: String) async throws {
        var options = ReplayOptions(agent: Paths.agent)
        options.store = .postgres(try await PostgresCluster.shared)
        let result = await ReplaySlots.shared.run(Paths.scenarios.appendingPathComponent(name).path, options: options)
        #expect(result.passed, "\(result.report)")
    }
}
