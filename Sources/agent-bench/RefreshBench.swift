import AgentTestSupport
import FakeSmartcar
import Foundation

/// The refresh paths against the fake with realistic latency: many callers of one expired key
/// (single-flight: one refresh must go upstream), and many keys expiring at once (the storm: bounded
/// upstream concurrency, no errors).
extension Bench {
    func runSingleFlight(into report: inout Report) throws {
        let callers = options.singleFlightCallers
        progress(
            "single-flight: \(Report.grouped(Double(callers))) concurrent getToken for one expired key, fake latency \(options.latencyMilliseconds) ms"
        )
        let agent = try singleFlight(
            sidecars.agent(store: sidecars.work + "/single-flight.sqlite3", fake: slow), callers: callers)
        let peer = try sidecars.peer(store: sidecars.work + "/single-flight.json", fake: slow).map {
            try singleFlight($0, callers: callers)
        }
        let held = agent.refreshes == 1 && agent.distinctTokens == 1
        report.add(
            Row(
                id: "singleFlight.refreshes",
                measure:
                    "single-flight: upstream refreshes, \(Report.grouped(Double(callers))) concurrent getToken of 1 expired key",
                unit: "count", agent: Double(agent.refreshes), peer: peer.map { Double($0.refreshes) },
                peerNote: peerNote,
                target: "= 1 (and 1 access token)", verdict: held ? .ok : .fail))
        report.add(
            Row(
                id: "singleFlight.errors", measure: "single-flight: error replies", unit: "count",
                agent: Double(agent.errors), peer: peer.map { Double($0.errors) }, peerNote: peerNote,
                target: "0", verdict: agent.errors == 0 ? .ok : .fail))
        report.add(
            Row(
                id: "singleFlight.milliseconds",
                measure: "single-flight: time to answer all (ms, fake latency \(options.latencyMilliseconds) ms)",
                unit: "ms", agent: agent.milliseconds, peer: peer?.milliseconds, peerNote: peerNote,
                ratio: peer.flatMap { ratio(agent.milliseconds, $0.milliseconds, "peer") }))
    }

    private struct SingleFlightOutcome {
        var refreshes: Int
        var errors: Int
        var distinctTokens: Int
        var milliseconds: Double
    }

    private func singleFlight(_ recipe: Sidecars.Recipe, callers: Int) throws -> SingleFlightOutcome {
        let child = try recipe.start(stderrPath: logPath("\(recipe.name)-single-flight"))
        defer { child.finish() }
        let pair = slow.mintTokens(userID: "single-flight")
        let expired = StoreFixtures.rfc3339(Date().addingTimeInterval(-60))
        let stored = try child.call(
            Requests.storeToken(
                id: 0, key: "expired", accessToken: pair.accessToken, refreshToken: pair.refreshToken,
                expiresAt: expired))
        guard Replies.isResult(stored) else {
            throw Clients.Failure(description: "\(recipe.name) refused storeToken: \(stored.prefix(300))")
        }
        let before = slow.count(.token)
        let batch = RequestBatch(count: callers) { Requests.getToken(id: $0 + 1, key: "expired") }
        let (milliseconds, replies) = try Clients.burst(child, batch)
        let results = replies.filter(Replies.isResult)
        let tokens = Set(results.compactMap { Replies.stringField("accessToken", in: $0) })
        return SingleFlightOutcome(
            refreshes: slow.count(.token) - before, errors: replies.count - results.count,
            distinctTokens: tokens.count, milliseconds: milliseconds)
    }

    func runStorm(into report: inout Report) throws {
        let keys = options.stormKeys, bound = options.stormConcurrency
        let latency = Double(options.latencyMilliseconds) / 1000
        let ideal = (Double(keys) / Double(bound)).rounded(.up) * latency
        progress(
            "refresh storm: \(Report.grouped(Double(keys))) keys expiring at once, --max-upstream-concurrency \(bound), fake latency \(options.latencyMilliseconds) ms (ideal \(String(format: "%.1f", ideal)) s)"
        )
        let path = sidecars.work + "/storm.sqlite3"
        try StoreFixtures.fillExpired(.sqlite(path), count: keys, mintedBy: slow, user: "storm")
        slow.reset()
        let child = try sidecars.agent(
            store: path, fake: slow, extraArguments: ["--max-upstream-concurrency", "\(bound)"]
        )
        .start(stderrPath: logPath("agent-storm"))
        defer { child.finish() }
        let batch = RequestBatch(count: keys) { Requests.getToken(id: $0 + 1, key: StoreFixtures.key($0)) }
        let (milliseconds, replies) = try Clients.burst(child, batch)
        let errors = replies.count - replies.filter(Replies.isResult).count
        let status = try child.call(Requests.status(id: 0))
        let agentPeak = Replies.intField("peakUpstreamConcurrency", in: status) ?? -1
        let fakePeak = slow.peakConcurrentRequests
        let refreshes = slow.count(.token)

        let seconds = milliseconds / 1000
        let serialPeer =
            sidecars.hasPeer ? "not run (serial: ≥ \(Report.grouped(Double(keys) * latency)) s)" : "skipped"
        report.add(
            Row(
                id: "storm.seconds",
                measure:
                    "refresh storm: \(Report.grouped(Double(keys))) keys expiring at once, total (s; floor = keys ÷ bound × latency)",
                unit: "s", agent: seconds, floor: ideal, peerNote: serialPeer, ratio: ratio(seconds, ideal, "floor")))
        let bounded = "≤ \(bound) (--max-upstream-concurrency)"
        report.add(
            Row(
                id: "storm.peakUpstreamConcurrency.agent",
                measure: "refresh storm: peak upstream concurrency, agent's status",
                unit: "count", agent: Double(agentPeak), target: bounded,
                verdict: agentPeak > 0 && agentPeak <= bound ? .ok : .fail))
        report.add(
            Row(
                id: "storm.peakUpstreamConcurrency.fake",
                measure: "refresh storm: peak upstream concurrency, seen by the fake",
                unit: "count", agent: Double(fakePeak), target: bounded, verdict: fakePeak <= bound ? .ok : .fail))
        report.add(
            Row(
                id: "storm.errors", measure: "refresh storm: error replies", unit: "count", agent: Double(errors),
                target: "0", verdict: errors == 0 ? .ok : .fail))
        report.add(
            Row(
                id: "storm.refreshes", measure: "refresh storm: upstream refreshes", unit: "count",
                agent: Double(refreshes),
                target: "= \(Report.grouped(Double(keys)))", verdict: refreshes == keys ? .ok : .fail))
    }
}
