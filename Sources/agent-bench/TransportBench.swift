import AgentTestSupport
import Foundation

/// Cached `getToken` over the pipe: sequential round trips (median, p99, p99.9) and pipelined throughput
/// with 1, 16 and 256 requests in flight, for the agent (on SQLite, and on PostgreSQL when it is compared: a
/// cached read must not touch the store), the peer and the floor (`cat`), all alive at once and measured in
/// interleaved rounds so that a noisy neighbour hits them alike.
extension Bench {
    /// From the issue: on these machines the peer adds about 14 µs over the floor and serves about 150,000
    /// cached getToken per second pipelined. Used for the targets only when the peer cannot run here.
    static let referencePeerOverheadMicroseconds = 14.0
    static let referencePeerThroughput = 150_000.0

    private struct Subject {
        let child: MeasuredProcess
        let marker: [UInt8]
    }

    func runTransport(into report: inout Report) throws {
        var subjects = [
            Subject(child: try sidecars.floor.start(), marker: Replies.methodMarker),
            Subject(
                child: try sidecars.agent(store: fixtures.agentOne, fake: fast).start(
                    stderrPath: logPath("agent-transport")),
                marker: Replies.resultMarker),
        ]
        if let store = fixtures.postgresOne {
            let recipe = sidecars.agent(store, fake: fast)
            subjects.append(
                Subject(
                    child: try recipe.start(stderrPath: logPath("\(recipe.name)-transport")),
                    marker: Replies.resultMarker))
        }
        if let peer = sidecars.peer(store: fixtures.peerOne, fake: fast) {
            subjects.append(
                Subject(child: try peer.start(stderrPath: logPath("peer-transport")), marker: Replies.resultMarker))
        }
        defer { subjects.forEach { $0.child.finish() } }

        let perRound = options.roundTripsPerRound, warmup = options.roundTripWarmup
        let sequential = RequestBatch(count: warmup + options.roundTripRounds * perRound) {
            Requests.getToken(id: $0 + 1, key: Bench.cachedKey)
        }
        progress("sequential round trips: \(options.roundTripRounds) rounds of \(perRound) after \(warmup) to warm up")
        var samples: [String: [Double]] = [:]
        for subject in subjects {
            _ = try Clients.roundTrips(subject.child, sequential, 0..<warmup, marker: subject.marker)
        }
        for round in 0..<options.roundTripRounds {
            let range = (warmup + round * perRound)..<(warmup + (round + 1) * perRound)
            for offset in subjects.indices {
                let subject = subjects[(round + offset) % subjects.count]
                samples[subject.child.name, default: []] += try Clients.roundTrips(
                    subject.child, sequential, range, marker: subject.marker)
            }
        }
        addRoundTripRows(samples.mapValues(Statistics.init), into: &report)

        for window in [1, 16, 256] {
            let count = options.pipelineRequests[window] ?? 10_000
            progress("pipelined, \(window) in flight: \(options.pipelineRounds) rounds of \(count) requests")
            let batch = RequestBatch(count: count) { Requests.getToken(id: 1_000_000 + $0, key: Bench.cachedKey) }
            var rates: [String: [Double]] = [:]
            for round in 0..<options.pipelineRounds {
                for offset in subjects.indices {
                    let subject = subjects[(round + offset) % subjects.count]
                    rates[subject.child.name, default: []].append(
                        try Clients.pipelined(subject.child, batch, window: window, marker: subject.marker))
                }
            }
            addThroughputRow(window: window, rates.mapValues { Statistics($0).median }, into: &report)
        }
    }

    private func addRoundTripRows(_ stats: [String: Statistics], into report: inout Report) {
        let agent = stats["agent"]!, floor = stats["floor"]!, peer = stats["peer"],
            postgres = stats[BenchStore.Backend.postgres.agentName]
        let n = Report.grouped(Double(agent.count))
        for (id, label, p) in [("median", "median", 50.0), ("p99", "p99", 99.0), ("p999", "p99.9", 99.9)] {
            report.add(
                Row(
                    id: "roundTrip.\(id)", measure: "cached getToken round trip, \(label) (µs, \(n) sequential)",
                    unit: "µs",
                    agent: agent.percentile(p), postgres: postgres?.percentile(p), peer: peer?.percentile(p),
                    floor: floor.percentile(p), peerNote: peerNote,
                    ratio: ratio(agent.percentile(p), floor.percentile(p), "floor")))
        }
        let agentOverhead = agent.median - floor.median
        let postgresOverhead = postgres.map { $0.median - floor.median }
        let peerOverhead = peer.map { $0.median - floor.median }
        let peerLimit = (peerOverhead ?? Bench.referencePeerOverheadMicroseconds) / 3
        // Issue 14: at most 3 µs over the floor on either store.
        let limit = postgres == nil ? peerLimit : min(peerLimit, 3)
        let target =
            postgres != nil
            ? String(format: "≤ %.2f on both (issue 14: ≤ 3; ⅓ of the peer's)", limit)
            : peerOverhead == nil
                ? String(format: "≤ %.2f (⅓ of the issue's 14 µs peer)", limit)
                : String(format: "≤ ⅓ of peer's (%.2f)", limit)
        report.add(
            Row(
                id: "roundTrip.overheadOverFloor", measure: "  overhead over the floor, median (µs)", unit: "µs",
                agent: agentOverhead, postgres: postgresOverhead, peer: peerOverhead, peerNote: peerNote,
                ratio: peerOverhead.flatMap { ratio(agentOverhead, $0, "peer's") }, target: target,
                verdict: agentOverhead <= limit && (postgresOverhead ?? 0) <= limit ? .met : .missed))
    }

    private func addThroughputRow(window: Int, _ rates: [String: Double], into report: inout Report) {
        let agent = rates["agent"]!, peer = rates["peer"]
        var row = Row(
            id: "pipelined.\(window)", measure: "pipelined cached getToken, \(window) in flight (req/s)", unit: "req/s",
            agent: agent, postgres: rates[BenchStore.Backend.postgres.agentName], peer: peer, floor: rates["floor"],
            peerNote: peerNote,
            ratio: peer.flatMap { ratio(agent, $0, "peer") })
        if window == 256 {
            let needed = 2 * (peer ?? Bench.referencePeerThroughput)
            row.target = peer == nil ? "≥ \(Report.grouped(needed)) (2× the issue's peer)" : "≥ 2× peer"
            row.verdict = agent >= needed ? .met : .missed
        }
        report.add(row)
    }

    /// Shown in the peer column of rows the peer could have run but did not.
    var peerNote: String? { sidecars.hasPeer ? nil : "skipped" }

    /// `a / b` as "1.23× what" (two significant digits below 0.01).
    func ratio(_ a: Double, _ b: Double, _ what: String) -> String? {
        guard b != 0, a.isFinite, b.isFinite else { return nil }
        let value = a / b
        return String(format: value >= 100 ? "%.0f" : value >= 0.01 ? "%.2f" : "%.2g", value) + "× " + what
    }
}
