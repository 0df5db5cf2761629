import AgentTestSupport
import Foundation

/// Model-based concurrency search (issue 12, must-show 2): episodes of `ModelEpisode`, each with its own seed
/// (the run's seed, then the next ones), so a failure names the seed that replays it:
/// `agent-reliability --seed S model` runs that episode first. Short mode (CI): 2 episodes of 48 operations.
/// Long mode: episodes of 240 operations until 10 minutes have passed.
@MainActor
struct ModelSuite {
    let harness: Harness

    nonisolated static let processes = 3

    func run(_ report: Report) throws {
        let operations = harness.long ? 240 : 48
        let budget: Duration = harness.long ? .seconds(600) : .zero
        let started = ContinuousClock.now
        var figures = ModelEpisode.Figures()
        var seeds: [UInt64] = []
        var failed: String?
        repeat {
            let seed = harness.seed &+ UInt64(seeds.count)
            seeds.append(seed)
            let episode = try ModelEpisode(harness: harness, seed: seed, processes: Self.processes)
            do {
                try episode.run(operations: operations)
            } catch {
                failed =
                    "seed 0x\(String(seed, radix: 16)) (replay: agent-reliability --seed 0x\(String(seed, radix: 16)) model): \(error)"
            }
            figures.add(episode.figures)
        } while failed == nil && (seeds.count < 2 || ContinuousClock.now - started < budget)
        if let failed { report.fail(failed) }

        report.figure(
            "setup",
            "\(Self.processes) agents on one store, keys \(ModelChoices.keys.map(\.description).joined(separator: " ")), fake reuse grace \(Int(ModelEpisode.graceSeconds)) s"
        )
        report.figure(
            "episodes (seeds)", "\(seeds.count): 0x\(String(seeds[0], radix: 16)) … 0x\(String(seeds.last!, radix: 16))"
        )
        report.figure("operations", figures.operations)
        report.counts("outcomes", figures.outcomes)
        report.counts("upstream faults", figures.faults)
        report.figure("held answers released", figures.releasedHeld)
        report.figure("kill -9 (and restart)", figures.kills)
        report.figure("storage locks", figures.storageLocks)
        report.figure("quiescent checks", figures.quiescentChecks)
        report.figure("refresh tokens re-sent in grace", figures.graceReuses)
        report.figure("invalid_grant excused", "\(figures.excusedRefusals) (after a kill or a lost answer)")
        report.figure(
            "stale snapshot reads",
            "\(figures.staleSnapshotReads) (a read answered before another agent's write reached this agent, tens of ms; MODEL_STRICT_SNAPSHOTS=1 fails on them)"
        )
        report.figure(
            "failed saves written late",
            "\(figures.lateKeptSaves) (a storeToken/exchange answered storageError, written in the background over a later successful write)"
        )
        report.check(
            figures.lateKeptSaves == 0, "a failed save was written in the background over a later write of its key")
        report.figure("violations", failed == nil ? 0 : 1)
    }
}
