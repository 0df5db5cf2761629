import AgentTestSupport
import Foundation

/// Spawn to the first answered `getToken` for a key that is in the store with a valid token (so nothing
/// goes to Smartcar): what a script that starts the agent for one token waits. Once with a store holding
/// only that key (also on PostgreSQL, when it is compared: connecting and the schema check are the extra), once
/// with 100,000 keys. Each start is a new process; the first one is not counted.
extension Bench {
    func runColdStart(into report: inout Report) throws {
        let cases:
            [(
                label: String, id: String, agentStore: String, postgresStore: BenchStore?, peerStore: String?,
                key: String, targetMilliseconds: Double
            )] = [
                (
                    "store of 1 key", "oneKey", fixtures.agentOne, fixtures.postgresOne,
                    sidecars.hasPeer ? fixtures.peerOne : nil, Bench.cachedKey, 20
                ),
                (
                    "store of 100,000 keys", "hundredThousandKeys", fixtures.agentStores[Bench.largeStoreForStartup]!,
                    nil, fixtures.peerStores[Bench.largeStoreForStartup], StoreFixtures.key(50_000), 100
                ),
            ]
        for item in cases {
            progress(
                "cold start, \(item.label): \(options.coldStarts) agent starts\(item.postgresStore == nil ? "" : " on each store"), \(sidecars.hasPeer ? options.peerColdStarts : 0) peer starts"
            )
            let agent = try coldStarts(
                sidecars.agent(store: item.agentStore, fake: fast), key: item.key, runs: options.coldStarts)
            let postgres = try item.postgresStore.map {
                try coldStarts(sidecars.agent($0, fake: fast), key: item.key, runs: options.coldStarts)
            }
            let peer = try item.peerStore.flatMap { store in
                try sidecars.peer(store: store, fake: fast).map {
                    try coldStarts($0, key: item.key, runs: options.peerColdStarts)
                }
            }
            report.add(
                Row(
                    id: "coldStart.\(item.id)",
                    measure: "cold start, spawn → first cached getToken, \(item.label) (ms, median)",
                    unit: "ms", agent: agent.median, postgres: postgres?.median, peer: peer?.median,
                    peerNote: peerNote, ratio: peer.flatMap { ratio(agent.median, $0.median, "peer") },
                    target: "< \(Int(item.targetMilliseconds)) ms" + (postgres == nil ? "" : "; PostgreSQL < 50 ms"),
                    verdict: agent.median < item.targetMilliseconds && (postgres?.median ?? 0) < 50 ? .met : .missed))
        }
    }

    /// Milliseconds from before `posix_spawn` to the reply, `runs` times after one uncounted start.
    private func coldStarts(_ recipe: Sidecars.Recipe, key: String, runs: Int) throws -> Statistics {
        var samples: [Double] = []
        let request = Array((Requests.getToken(id: 1, key: key) + "\n").utf8)
        for run in 0...runs {
            let started = Monotonic.now()
            let child = try recipe.start(stderrPath: logPath("\(recipe.name)-cold-start"))
            try child.write(request)
            guard let reply = child.output.nextLineString() else {
                throw Clients.Failure(description: "\(recipe.name) exited before answering\(child.stderrTail)")
            }
            let ended = Monotonic.now()
            guard Replies.isResult(reply) else {
                throw Clients.Failure(description: "\(recipe.name) answered: \(reply.prefix(300))")
            }
            child.finish()
            if run > 0 { samples.append(Monotonic.milliseconds(from: started, to: ended)) }
        }
        return Statistics(samples)
    }
}
