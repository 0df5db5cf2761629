import AgentTestSupport
import Foundation

/// Model-based concurrency search (issue 12, must-show 2): episodes of `ModelEpisode`, each seed (the run's
/// seed, then the next ones) played once on a SQLite store and once on a PostgreSQL store (issue 14, a database
/// of a `PostgresCluster` of its own), so a failure names the seed that replays it:
/// `agent-reliability --seed S model` runs that seed first. Short mode (CI): 2 seeds of 48 operations.
/// Long mode: seeds of 240 operations until 10 minutes have passed.
@MainActor
struct ModelSuite {
    let harness: Harness

    nonisolated static let processes = 3

    func run(_ report: Report) throws {
        let operations = harness.long ? 240 : 48
        let budget: Duration = harness.long ? .seconds(600) : .zero
        let started = ContinuousClock.now
        var figures = ModelEpisode.Figures()
        let backends: [StoreBackend] = [.sqlite, .postgres(try PostgresCluster())]
        var seeds: [UInt64] = []
        var failed: String?
        repeat {
            let seed = harness.seed &+ UInt64(seeds.count)
            seeds.append(seed)
            for backend in backends where failed == nil {
                let episode = try ModelEpisode(
                    harness: harness, seed: seed, processes: Self.processes, backend: backend)
                do {
                    try episode.run(operations: operations)
                } catch {
                    failed =
                        "seed 0x\(String(seed, radix: 16)) on \(backend.name) (replay: agent-reliability --seed 0x\(String(seed, radix: 16)) model): \(error)"
                }
                figures.add(episode.figures)
            }
        } while failed == nil && (seeds.count < 2 || ContinuousClock.now - started < budget)
        if let failed { report.fail(failed) }

        report.figure(
            "setup",
            "\(Self.processes) agents on one store (each seed on SQLite, then PostgreSQL), keys \(ModelChoices.keys.map(\.description).joined(separator: " ")), fake reuse grace \(Int(ModelEpisode.graceSeconds)) s"
        )
        report.figure(
            "seeds (× 2 stores)",
            "\(seeds.count): 0x\(String(seeds[0], radix: 16)) … 0x\(String(seeds.last!, radix: 16))"
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
