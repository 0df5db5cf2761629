import AgentTestSupport
import FakeSmartcar
import Foundation
import TokenStore

/// The live workload (issue 16): 1,000 keys whose access tokens live 60 s, against a fake with realistic latency,
/// asked for at random by 16 clients at once (16 requests in flight on the sidecar's pipe) with `minValidity` 0.
/// The agent refreshes ahead of expiry, so its latencies should be the cached path's; the peer refreshes on
/// demand, so its callers wait. Refreshes per key per token lifetime come from the fake's counts.
extension Bench {
    static let liveKeys = 1_000
    static let liveLifetime = 60
    static let liveClients = 16

    func runLiveWorkload(into report: inout Report) throws {
        let seconds = options.quick ? 20.0 : 120.0
        let cachedSeconds = options.quick ? 5.0 : 30.0
        var fakeOptions = FakeSmartcar.Options()
        fakeOptions.accessTokenLifetime = Self.liveLifetime
        fakeOptions.latency = .milliseconds(options.latencyMilliseconds)
        let fake = try FakeSmartcar(options: fakeOptions)
        defer { fake.stop() }
        progress(
            "live workload: \(Self.liveKeys) keys, \(Self.liveLifetime)-second access tokens, fake latency \(options.latencyMilliseconds) ms, \(Self.liveClients) clients for \(Int(seconds)) s\(options.quick ? " (--quick; the full run takes 120 s)" : "")"
        )

        let cachedPath = sidecars.work + "/live-cached.sqlite3"
        let now = Date()
        try StoreFixtures.buildAgentStore(at: cachedPath, count: Self.liveKeys) {
            StoreFixtures.syntheticToken($0, now: now)
        }
        let cached = try liveRun(sidecars.agent(store: cachedPath, fake: fake), fake: fake, seconds: cachedSeconds)

        let agentPath = sidecars.work + "/live.sqlite3"
        try StoreFixtures.buildAgentStore(at: agentPath, count: Self.liveKeys, token: liveTokens(fake))
        let agent = try liveRun(sidecars.agent(store: agentPath, fake: fake), fake: fake, seconds: seconds)

        let peer = try sidecars.peer(store: sidecars.work + "/live.json", fake: fake).map { recipe in
            try StoreFixtures.buildPeerStore(
                at: sidecars.work + "/live.json", count: Self.liveKeys, token: liveTokens(fake))
            return try liveRun(recipe, fake: fake, seconds: seconds)
        }
        addLiveRows(agent: agent, cached: cached, peer: peer, seconds: seconds, into: &report)
    }

    /// Rows whose tokens `fake` minted, expiring evenly over the next lifetime (as a fleet in steady state),
    /// each issued a lifetime before its expiry.
    private func liveTokens(_ fake: FakeSmartcar) -> @Sendable (Int) -> StoredToken {
        let now = Date()
        let pairs = (0..<Self.liveKeys).map { fake.mintTokens(userID: "live-\($0)") }
        let lifetime = Double(Self.liveLifetime)
        return { index in
            var token = StoreFixtures.syntheticToken(index, now: now)
            token.accessToken = pairs[index].accessToken
            token.refreshToken = pairs[index].refreshToken
            token.expiresAt = now.addingTimeInterval(5 + lifetime * Double(index) / Double(Self.liveKeys))
            token.lastRefreshedAt = token.expiresAt.addingTimeInterval(-lifetime)
            return token
        }
    }

    private struct LiveOutcome {
        var latencies: Statistics
        var errors: Int
        var refreshes: Int
        var seconds: Double
        /// Refreshes per key per token lifetime.
        var refreshRate: Double {
            Double(refreshes) / (Double(Bench.liveKeys) * seconds / Double(Bench.liveLifetime))
        }
    }

    /// Asks every key once (so both sidecars start warm), then keeps `liveClients` random getToken in flight for
    /// `seconds`, timing each from its write to its reply.
    private func liveRun(_ recipe: Sidecars.Recipe, fake: FakeSmartcar, seconds: Double) throws -> LiveOutcome {
        let child = try recipe.start(stderrPath: logPath("\(recipe.name)-live"))
        defer { child.finish() }
        for index in 0..<Bench.liveKeys {
            let reply = try child.call(Self.liveRequest(id: index, key: StoreFixtures.key(index)))
            guard Replies.isResult(reply) else {
                throw Clients.Failure(description: "\(recipe.name) refused getToken: \(reply.prefix(300))")
            }
        }
        let before = fake.count(.token)
        var random = SystemRandomNumberGenerator()
        var sentAt = [UInt64](repeating: 0, count: 1 << 16)
        var latencies: [Double] = []
        latencies.reserveCapacity(Int(seconds) * 50_000)
        var nextID = 0, outstanding = 0, errors = 0
        func send() throws {
            let key = StoreFixtures.key(Int.random(in: 0..<Bench.liveKeys, using: &random))
            sentAt[nextID & 0xFFFF] = Monotonic.now()
            try child.writeLine(Self.liveRequest(id: nextID, key: key))
            nextID += 1
            outstanding += 1
        }
        let started = Monotonic.now()
        let end = started + UInt64(seconds * 1e9)
        for _ in 0..<Bench.liveClients { try send() }
        while outstanding > 0 {
            guard let reply = child.output.nextLine() else {
                throw Clients.Failure(description: "\(recipe.name) closed its output\(child.stderrTail)")
            }
            let received = Monotonic.now()
            outstanding -= 1
            guard let id = Self.replyID(reply) else { throw Clients.Failure(description: "a reply without an id") }
            latencies.append(Double(received - sentAt[id & 0xFFFF]) / 1000)
            if !Replies.isResult(reply) { errors += 1 }
            if received < end { try send() }
        }
        let elapsed = Double(Monotonic.now() - started) / 1e9
        return LiveOutcome(
            latencies: Statistics(latencies), errors: errors, refreshes: fake.count(.token) - before, seconds: elapsed)
    }

    /// A getToken for a token valid for any time at all (`minValidity` 0): a 60-second token meets no more.
    private static func liveRequest(id: Int, key: String) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"getToken","params":{"key":"\#(key)","minValidity":0}}"#
    }

    /// The integer after `"id":` (spaces allowed, as Python's json writes them).
    private static func replyID(_ line: UnsafeRawBufferPointer) -> Int? {
        let needle = Array(#""id":"#.utf8)
        guard line.count >= needle.count else { return nil }
        for start in 0...(line.count - needle.count)
        where line[start] == needle[0] && zip(needle.indices, needle).allSatisfy({ line[start + $0] == $1 }) {
            var index = start + needle.count
            while index < line.count, line[index] == UInt8(ascii: " ") { index += 1 }
            var value = 0, digits = 0
            while index < line.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[index]) {
                value = value * 10 + Int(line[index] - UInt8(ascii: "0"))
                index += 1
                digits += 1
            }
            return digits > 0 ? value : nil
        }
        return nil
    }

    private func addLiveRows(
        agent: LiveOutcome, cached: LiveOutcome, peer: LiveOutcome?, seconds: Double, into report: inout Report
    ) {
        let what = "live workload (\(Int(seconds)) s\(options.quick ? ", --quick" : ""))"
        for (name, p) in [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)] {
            let value = agent.latencies.percentile(p), floor = cached.latencies.percentile(p)
            report.add(
                Row(
                    id: "live.getToken.\(name)",
                    measure: "\(what): getToken \(name) (µs; floor = the cached path, no token expiring)",
                    unit: "µs", agent: value, peer: peer?.latencies.percentile(p), floor: floor, peerNote: peerNote,
                    ratio: ratio(value, floor, "cached"),
                    target: name == "p99.9" ? "≈ cached (≤ 2×)" : nil,
                    verdict: name == "p99.9" ? (value <= 2 * floor ? .met : .missed) : nil))
        }
        report.add(
            Row(
                id: "live.refreshesPerLifetime",
                measure: "\(what): refreshes per key per token lifetime (fake's count)",
                unit: "ratio", agent: agent.refreshRate, peer: peer?.refreshRate, peerNote: peerNote,
                target: "≤ 1.05", verdict: agent.refreshRate <= 1.05 ? .met : .missed))
        report.add(
            Row(
                id: "live.requests", measure: "\(what): getToken answered", unit: "count",
                agent: Double(agent.latencies.count), peer: peer.map { Double($0.latencies.count) }, peerNote: peerNote)
        )
        report.add(
            Row(
                id: "live.errors", measure: "\(what): error replies", unit: "count", agent: Double(agent.errors),
                peer: peer.map { Double($0.errors) }, peerNote: peerNote, target: "0",
                verdict: agent.errors == 0 ? .ok : .fail))
    }
}
