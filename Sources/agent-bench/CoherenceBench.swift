import AgentTestSupport
import Foundation

/// How long a change one agent makes takes to reach another agent on the same store file (issue 13 aims for
/// 100 ms): agent A stores new tokens for a key, or forgets it, while agent B holds the key in memory; B is
/// asked again and again until it answers the change.
extension Bench {
    func runCoherence(into report: inout Report) throws {
        let trials = options.quick ? 200 : 2000
        progress("coherence: \(trials) changes by one agent, each awaited on another agent on the same store")
        let path = sidecars.work + "/coherence.sqlite3"
        let changer = try sidecars.agent(store: path, fake: fast).start(stderrPath: logPath("agent-coherence-a"))
        defer { changer.finish() }
        let observer = try sidecars.agent(store: path, fake: fast).start(stderrPath: logPath("agent-coherence-b"))
        defer { observer.finish() }
        var stores: [Double] = [], forgets: [Double] = []
        var id = 0
        func ask(_ child: MeasuredProcess, _ line: (Int) -> String) throws -> String {
            id += 1
            return try child.call(line(id))
        }
        func store() throws -> String {
            let pair = fast.mintTokens(userID: "coherence")
            let expiresAt = StoreFixtures.rfc3339(Date().addingTimeInterval(7200))
            let reply = try ask(changer) {
                Requests.storeToken(
                    id: $0, key: "car", accessToken: pair.accessToken, refreshToken: pair.refreshToken,
                    expiresAt: expiresAt)
            }
            guard Replies.isResult(reply) else {
                throw Clients.Failure(description: "storeToken: \(reply.prefix(300))")
            }
            return pair.accessToken
        }
        /// Milliseconds until the observer's `getToken` reply satisfies `seen`.
        func untilObserved(_ seen: (String) -> Bool) throws -> Double {
            let started = Monotonic.now()
            while true {
                let reply = try ask(observer) { Requests.getToken(id: $0, key: "car") }
                let elapsed = Monotonic.microseconds(from: started, to: Monotonic.now()) / 1000
                if seen(reply) { return elapsed }
                guard elapsed < 10_000 else {
                    throw Clients.Failure(description: "the observer still answers \(reply.prefix(300)) after 10 s")
                }
            }
        }
        var current = try store()
        for trial in 0..<trials {
            // The observer serves the key's current token from memory before it changes.
            _ = try untilObserved { Replies.stringField("accessToken", in: $0) == current }
            if trial % 2 == 0 {
                current = try store()
                let expected = current
                stores.append(try untilObserved { Replies.stringField("accessToken", in: $0) == expected })
            } else {
                let reply = try ask(changer) { Requests.request(id: $0, "forgetToken", ["key": "car"]) }
                guard Replies.isResult(reply) else {
                    throw Clients.Failure(description: "forgetToken: \(reply.prefix(300))")
                }
                forgets.append(try untilObserved { $0.contains(#""unknownKey""#) })
                current = try store()
            }
        }
        for (name, samples) in [("store", stores), ("forget", forgets)] {
            let statistics = Statistics(samples)
            for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
                let value = statistics.percentile(p)
                report.add(
                    Row(
                        id: "coherence.\(name).\(label)",
                        measure:
                            "coherence: another agent serves a \(name) after, \(label) (ms, \(statistics.count) trials)",
                        unit: "ms", agent: value, target: "≤ 100", verdict: value <= 100 ? .met : .missed))
            }
        }
    }
}
