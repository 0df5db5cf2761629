import AgentTestSupport
import Dispatch
import Foundation
import Synchronization

/// A fleet on one store in a refresh storm: every key has expired, and every agent is asked for every key at
/// once, each starting at its own share of the keys (agent i at key i × keys ÷ agents) so that the fleet's
/// upstream slots work side by side and the agents meet on the keys another one is refreshing. The store's leases
/// must make each key's refresh happen once in the whole fleet, and every agent must answer it with that one
/// token. On PostgreSQL half of the agents run on each of two simulated hosts when this machine allows it.
///
/// The floor is what the upstream limits allow: the fleet has agents × `--max-upstream-concurrency` slots, each
/// refresh holds one for the fake's latency, so keys ÷ (agents × bound), rounded up, times the latency.
extension Bench {
    func runFleetStorm(into report: inout Report) throws {
        let keys = options.stormKeys, agents = options.fleetAgents, bound = options.stormConcurrency
        let latency = Double(options.latencyMilliseconds) / 1000
        let floor = (Double(keys) / Double(agents * bound)).rounded(.up) * latency
        var outcomes: [BenchStore.Backend: FleetOutcome] = [:]
        for backend in backends {
            let places = fleetPlaces(backend, agents: agents)
            progress(
                "fleet storm on \(backend.rawValue): \(Report.grouped(Double(keys))) expired keys, each asked of \(agents) agents (\(places.summary)), --max-upstream-concurrency \(bound) each, fake latency \(options.latencyMilliseconds) ms (floor \(String(format: "%.2f", floor)) s)"
            )
            outcomes[backend] = try fleetStorm(try freshStore(backend, "fleet-storm"), places: places)
        }
        let sqlite = outcomes[.sqlite]!, postgres = outcomes[.postgres]
        let judged = postgres ?? sqlite
        report.add(
            Row(
                id: "fleetStorm.seconds",
                measure:
                    "fleet storm: \(Report.grouped(Double(keys))) expired keys × \(agents) agents, total (s; floor = keys ÷ (agents × bound) × latency)",
                unit: "s", agent: sqlite.seconds, postgres: postgres?.seconds, floor: floor, peerNote: "n/a",
                ratio: ratio(judged.seconds, floor, "floor" + (postgres == nil ? "" : " (PostgreSQL)")),
                target: "≤ 1.3× floor" + (postgres == nil ? "" : " (PostgreSQL)"),
                verdict: judged.seconds <= 1.3 * floor ? .met : .missed))
        let invariants: [(id: String, measure: String, value: (FleetOutcome) -> Int)] = [
            ("errors", "error replies", \.errors),
            (
                "keysNotRefreshedOnce", "keys not refreshed exactly once (refreshes per key, at the fake)",
                \.keysNotRefreshedOnce
            ),
            ("keysWithTwoTokens", "keys answered with different tokens by different agents", \.keysWithTwoTokens),
        ]
        for invariant in invariants {
            let values = backends.compactMap { outcomes[$0] }.map(invariant.value)
            report.add(
                Row(
                    id: "fleetStorm.\(invariant.id)", measure: "fleet storm: \(invariant.measure)", unit: "count",
                    agent: Double(invariant.value(sqlite)), postgres: postgres.map { Double(invariant.value($0)) },
                    peerNote: "n/a", target: "0", verdict: values.allSatisfy { $0 == 0 } ? .ok : .fail))
        }
        report.add(
            Row(
                id: "fleetStorm.peakUpstreamConcurrency",
                measure: "fleet storm: peak upstream concurrency, at the fake",
                unit: "count", agent: Double(sqlite.peakUpstream), postgres: postgres.map { Double($0.peakUpstream) },
                peerNote: "n/a", target: "≤ \(agents * bound) (agents × bound)",
                verdict: backends.compactMap { outcomes[$0] }.allSatisfy { $0.peakUpstream <= agents * bound }
                    ? .ok : .fail))
    }

    struct FleetOutcome {
        var seconds: Double
        var errors: Int
        var keysNotRefreshedOnce: Int
        var keysWithTwoTokens: Int
        var peakUpstream: Int
    }

    /// One storm: fills `store` with expired keys minted by the slow fake (key i for user `fleet-i`), starts the
    /// agents where `places` says, releases every agent's burst at once, and checks the replies and the fake's log.
    private func fleetStorm(_ store: BenchStore, places: FleetPlaces) throws -> FleetOutcome {
        let keys = options.stormKeys, agents = places.count
        try StoreFixtures.fillExpired(store, count: keys, mintedBy: slow, user: "fleet")
        slow.reset()
        let recipes = (0..<agents).map { index in
            places.recipe(
                index,
                sidecars.agent(
                    places.store(index, store), fake: slow,
                    extraArguments: ["--max-upstream-concurrency", "\(options.stormConcurrency)"]))
        }
        let batches = (0..<agents).map { agent in
            RequestBatch(count: keys) { position in
                let index = (position + agent * keys / agents) % keys
                return Requests.getToken(id: index + 1, key: StoreFixtures.key(index))
            }
        }
        let bursts = try Bench.simultaneousBursts(
            recipes.indices.map { (recipes[$0], batches[$0], logPath("agent-fleet-\(store.backend)-\($0)")) })

        var errors = 0, keysWithTwoTokens: Set<Int> = []
        var answered = [String?](repeating: nil, count: keys)
        for reply in bursts.replies.joined() {
            guard Replies.isResult(reply), let id = Replies.intField("id", in: reply), (1...keys).contains(id),
                let token = Replies.stringField("accessToken", in: reply)
            else {
                errors += 1
                continue
            }
            if let first = answered[id - 1] {
                if first != token { keysWithTwoTokens.insert(id) }
            } else {
                answered[id - 1] = token
            }
        }
        var refreshes = [Int](repeating: 0, count: keys)
        for request in slow.requests where request.endpoint == .token && request.form["grant_type"] == "refresh_token" {
            if let owner = request.form["refresh_token"].flatMap(slow.owner(ofRefreshToken:)),
                owner.hasPrefix("fleet-"), let index = Int(owner.dropFirst(6)), (0..<keys).contains(index)
            {
                refreshes[index] += 1
            }
        }
        return FleetOutcome(
            seconds: bursts.milliseconds / 1000, errors: errors,
            keysNotRefreshedOnce: refreshes.filter { $0 != 1 }.count, keysWithTwoTokens: keysWithTwoTokens.count,
            peakUpstream: slow.peakConcurrentRequests)
    }

    /// Starts each recipe (waiting for it to answer `status`), then writes each one's whole batch at once from a
    /// thread per agent, all released together. Answers the time from the release to the last reply of any agent,
    /// and each agent's replies.
    private static func simultaneousBursts(
        _ runs: [(recipe: Sidecars.Recipe, batch: RequestBatch, log: String)]
    ) throws -> (milliseconds: Double, replies: [[String]]) {
        let ready = DispatchSemaphore(value: 0), go = DispatchSemaphore(value: 0), done = DispatchGroup()
        let results = Mutex([Result<(ended: UInt64, replies: [String]), any Error>?](repeating: nil, count: runs.count))
        for (index, run) in runs.enumerated() {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                let outcome = Result { () throws -> (ended: UInt64, replies: [String]) in
                    let child: MeasuredProcess
                    do {
                        child = try run.recipe.start(stderrPath: run.log)
                        guard Replies.isResult(try child.call(Requests.status(id: 0))) else {
                            throw Clients.Failure(description: "\(child.name) did not answer status")
                        }
                    } catch {
                        ready.signal()
                        throw error
                    }
                    defer { child.finish() }
                    ready.signal()
                    go.wait()
                    let replies = try Clients.burst(child, run.batch).replies
                    return (Monotonic.now(), replies)
                }
                results.withLock { $0[index] = outcome }
            }
            thread.name = "fleet agent \(index)"
            thread.start()
        }
        for _ in runs { ready.wait() }
        let started = Monotonic.now()
        for _ in runs { go.signal() }
        done.wait()
        let outcomes = try results.withLock { $0 }.map { try $0!.get() }
        let ended = outcomes.map(\.ended).max() ?? started
        return (Monotonic.milliseconds(from: started, to: ended), outcomes.map(\.replies))
    }
}
