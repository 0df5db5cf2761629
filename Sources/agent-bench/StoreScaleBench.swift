import AgentTestSupport
import Foundation
import TokenStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How the store's size weighs on a refresh, on memory and on disk:
/// - the durable cost of one refresh as the agent pays it (lease transaction + fenced commit transaction,
///   each fsynced), through the `TokenStore` API on stores of 1,000 to 1,000,000 keys: it must stay flat;
/// - a forced `getToken` refresh end to end through the agent (HTTP to the fake answering at once, lease,
///   commit), beside the peer's (which rewrites its whole JSON file);
/// - the agent's resident memory per cached key, and bytes on disk per key.
extension Bench {
    func runStoreScale(into report: inout Report) throws {
        let sizes = options.storeSizes
        progress(
            "persist one refresh through the TokenStore API, stores of \(sizes.map { Report.grouped(Double($0)) }.joined(separator: ", ")) keys, interleaved: \(options.persistSamples) refreshes each"
        )
        let (persist, unsealed, fsyncFloor) = try persistCosts(sizes: sizes)
        let smallest = sizes.min()!, largest = sizes.max()!
        let medians = sizes.map { persist[$0]!.median }
        for size in sizes {
            let median = persist[size]!.median
            var row = Row(
                id: "persist.\(size)",
                measure:
                    "persist one refresh (lease + commit, TokenStore API), \(Report.grouped(Double(size))) keys (ms, median; floor = 2 fsyncs)",
                unit: "ms", agent: median, floor: fsyncFloor.median,
                ratio: size == smallest
                    ? nil : ratio(median, persist[smallest]!.median, "\(Report.grouped(Double(smallest)))-key"))
            if size == largest {
                row.target = "flat: largest ≤ 2× smallest median"
                row.verdict = medians.max()! <= 2 * medians.min()! ? .met : .missed
            }
            report.add(row)
        }
        let sealingCost = persist[smallest]!.median - unsealed.median
        report.add(
            Row(
                id: "persist.sealingCost",
                measure:
                    "what sealing adds to one refresh's persist, \(Report.grouped(Double(smallest))) keys (ms, sealed − unsealed median; unsealed \(Report.format(unsealed.median, "ms") ?? "-"))",
                unit: "ms", agent: sealingCost, target: "≤ 0.1", verdict: sealingCost <= 0.1 ? .met : .missed))
        let crypto = try Self.sealingWorkPerRefresh()
        report.add(
            Row(
                id: "persist.sealingCPU",
                measure:
                    "sealing's own work in one refresh: 4 values opened, 2 sealed (µs, median of 2,000; no I/O, so no fsync noise)",
                unit: "µs", agent: crypto.median, target: "≤ 100", verdict: crypto.median <= 100 ? .met : .missed))

        for size in sizes {
            progress(
                "forced refresh through the agent\(fixtures.peerStores[size] != nil ? " and the peer" : ""), \(Report.grouped(Double(size))) keys: \(options.refreshSamples) refreshes"
            )
            let agent = try forcedRefreshes(sidecars.agent(store: fixtures.agentStores[size]!, fake: fast))
            let peer = try fixtures.peerStores[size].flatMap { store in
                try sidecars.peer(store: store, fake: fast).map { try forcedRefreshes($0) }
            }
            report.add(
                Row(
                    id: "forcedRefresh.\(size)",
                    measure:
                        "forced getToken refresh end to end (fake answers at once), \(Report.grouped(Double(size))) keys (ms, median)",
                    unit: "ms", agent: agent.median, peer: peer?.median,
                    peerNote: sidecars.hasPeer ? "not run" : "skipped",
                    ratio: peer.flatMap { ratio(agent.median, $0.median, "peer") }))
        }

        try addMemoryRows(into: &report)

        for size in sizes {
            let agentBytes = Double(StoreFixtures.diskBytes(fixtures.agentStores[size]!)) / Double(size)
            let peerBytes = fixtures.peerStores[size].map { Double(StoreFixtures.diskBytes($0)) / Double(size) }
            report.add(
                Row(
                    id: "disk.\(size)",
                    measure: "store on disk per key, \(Report.grouped(Double(size))) keys (bytes; file + WAL)",
                    unit: "B/key", agent: agentBytes, peer: peerBytes,
                    peerNote: sidecars.hasPeer ? "not run" : "skipped",
                    ratio: peerBytes.flatMap { ratio(agentBytes, $0, "peer") }))
        }
    }

    /// Milliseconds per refresh commit as the agent makes it (two transactions), on keys other than the live
    /// row 0, for every size, for an unsealed store of the smallest size, and for an fsync floor (two 4 KiB
    /// writes, each fsynced, in the same folder), all interleaved: fsync time on these machines varies tenfold
    /// from one second to the next, and interleaving makes it hit every store alike.
    private func persistCosts(
        sizes: [Int]
    ) throws -> (bySize: [Int: Statistics], unsealed: Statistics, fsyncFloor: Statistics) {
        let unsealedPlace = BenchStore.sqlite(storeFolder + "/unsealed.sqlite3")
        let now = Date()
        try StoreFixtures.fill(unsealedPlace, count: sizes.min()!, sealed: false) {
            StoreFixtures.syntheticToken($0, now: now)
        }
        // -2 stands for the unsealed store.
        let stores: [(Int, any TokenStore)] =
            try sizes.map { size in (size, try BenchStore.sqlite(fixtures.agentStores[size]!).open()) }
            + [(-2, try unsealedPlace.open(sealed: false))]
        let smallest = sizes.min()!
        let floor = try FsyncFloor(path: storeFolder + "/fsync-floor")
        let warmup = 5, samples = options.persistSamples
        let timings = try blockingAwait { () async throws -> [Int: [Double]] in
            var generator = SystemRandomNumberGenerator()
            var timings: [Int: [Double]] = [:]
            for index in 0..<(warmup + samples) {
                // -1 stands for the fsync floor; the order rotates every sample.
                let order = (stores.map(\.0) + [-1]).rotated(by: index)
                for size in order {
                    let started = Monotonic.now()
                    if size == -1 {
                        floor.twoCommits()
                    } else {
                        let store = stores.first { $0.0 == size }!.1
                        let keys = size < 0 ? smallest : size
                        try await Bench.refreshOnce(
                            store, key: StoreFixtures.key(Int.random(in: 1..<keys, using: &generator)), tag: index)
                    }
                    if index >= warmup {
                        timings[size, default: []].append(Monotonic.milliseconds(from: started, to: Monotonic.now()))
                    }
                }
            }
            for (_, store) in stores { await store.close() }
            return timings
        }
        return (
            timings.filter { $0.key >= 0 }.mapValues(Statistics.init), Statistics(timings[-2] ?? []),
            Statistics(timings[-1] ?? [])
        )
    }

    /// Microseconds of what sealing does in one refresh, beside the store's I/O: the lease's re-read opens the
    /// row's two values, the commit seals the two new ones and opens them again as it reads the row back.
    static func sealingWorkPerRefresh() throws -> Statistics {
        let sealer = try TokenSealer(
            secret: StoreFixtures.secrets.current, storeID: "agent-bench", salt: Array(repeating: 7, count: 32),
            application: StoreFixtures.application)
        let old = StoreFixtures.syntheticToken(1, now: Date())
        let sealedOld = try [old.accessToken, old.refreshToken].map {
            try sealer.seal($0, key: old.key, column: .accessToken, generation: 1)
        }
        var samples: [Double] = []
        for tag in 0..<2_200 {
            let started = Monotonic.now()
            for value in sealedOld { _ = try sealer.open(value, key: old.key, column: .accessToken, generation: 1) }
            for value in ["bench-at-\(tag)-" + old.accessToken, "bench-rt-\(tag)-" + old.refreshToken] {
                let sealed = try sealer.seal(value, key: old.key, column: .refreshToken, generation: 2)
                _ = try sealer.open(sealed, key: old.key, column: .refreshToken, generation: 2)
            }
            if tag >= 200 { samples.append(Monotonic.milliseconds(from: started, to: Monotonic.now()) * 1000) }
        }
        return Statistics(samples)
    }

    /// What the agent writes for one refresh: take the key's lease (the row re-read under it), then commit the
    /// rotated tokens fenced on the ones spent.
    static func refreshOnce(_ store: any TokenStore, key: String, tag: Int) async throws {
        guard
            case .acquired(let row?) = try await store.acquireLease(
                key, owner: "agent-bench", duration: 20, now: Date())
        else {
            throw Clients.Failure(description: "could not lease \(key)")
        }
        var refreshed = row
        refreshed.accessToken = "bench-at-\(tag)-" + row.accessToken.suffix(24)
        refreshed.refreshToken = "bench-rt-\(tag)-" + row.refreshToken.suffix(24)
        refreshed.expiresAt = Date().addingTimeInterval(7200)
        refreshed.lastRefreshedAt = Date()
        guard case .committed = try await store.commitRefresh(refreshed, owner: "agent-bench", replacing: row) else {
            throw Clients.Failure(description: "the commit of \(key) was fenced out, though the bench held its lease")
        }
    }

    /// Milliseconds per `getToken forceRefresh` of the live key, sequential, after one cached read.
    private func forcedRefreshes(_ recipe: Sidecars.Recipe) throws -> Statistics {
        let child = try recipe.start(stderrPath: logPath("\(recipe.name)-forced-refresh"))
        defer { child.finish() }
        _ = try child.call(Requests.getToken(id: 1, key: Bench.cachedKey))
        var samples: [Double] = []
        for index in 0...options.refreshSamples {
            let started = Monotonic.now()
            let reply = try child.call(Requests.getToken(id: 2 + index, key: Bench.cachedKey, forceRefresh: true))
            let ended = Monotonic.now()
            guard Replies.isResult(reply) else {
                throw Clients.Failure(description: "\(recipe.name) failed a forced refresh: \(reply.prefix(300))")
            }
            if index > 0 { samples.append(Monotonic.milliseconds(from: started, to: ended)) }
        }
        return Statistics(samples)
    }

    /// RSS of the agent after one answer, then after every key of the 100,000-key store was read into its
    /// cache; the peer's RSS with that store against its RSS with a 1-key store (it loads the whole file).
    private func addMemoryRows(into report: inout Report) throws {
        let keys = options.rssKeys
        progress("memory: the agent caching \(Report.grouped(Double(keys))) keys")
        let agent = try sidecars.agent(store: fixtures.agentStores[Bench.largeStoreForStartup]!, fake: fast).start(
            stderrPath: logPath("agent-memory"))
        defer { agent.finish() }
        _ = try agent.call(Requests.getToken(id: 1, key: Bench.cachedKey))
        let before = agent.residentKiB() ?? 0
        let warm = RequestBatch(count: keys) { Requests.getToken(id: 10 + $0, key: StoreFixtures.key($0)) }
        _ = try Clients.pipelined(agent, warm, window: 256, marker: Replies.resultMarker)
        let after = agent.residentKiB() ?? 0
        let agentPerKey = Double(after - before) * 1024 / Double(keys)

        var peerPerKey: Double?, peerTotal: Double?
        if let big = fixtures.peerStores[Bench.largeStoreForStartup], let large = sidecars.peer(store: big, fake: fast),
            let small = sidecars.peer(store: fixtures.peerOne, fake: fast)
        {
            func resident(_ recipe: Sidecars.Recipe) throws -> Int {
                let child = try recipe.start(stderrPath: logPath("peer-memory"))
                defer { child.finish() }
                _ = try child.call(Requests.getToken(id: 1, key: Bench.cachedKey))
                return child.residentKiB() ?? 0
            }
            let loaded = try resident(large), empty = try resident(small)
            peerPerKey = Double(loaded - empty) * 1024 / Double(keys)
            peerTotal = Double(loaded) / 1024
        }
        report.add(
            Row(
                id: "memory.perCachedKey",
                measure: "memory (RSS) per cached key, \(Report.grouped(Double(keys))) keys cached (bytes)",
                unit: "B/key", agent: agentPerKey, peer: peerPerKey, peerNote: peerNote,
                ratio: peerPerKey.flatMap { ratio(agentPerKey, $0, "peer") }, target: "< 1 KiB",
                verdict: agentPerKey < 1024 ? .met : .missed))
        report.add(
            Row(
                id: "memory.total", measure: "memory (RSS) in all, \(Report.grouped(Double(keys))) keys cached (MiB)",
                unit: "MiB", agent: Double(after) / 1024, peer: peerTotal, peerNote: peerNote,
                ratio: peerTotal.flatMap { ratio(Double(after) / 1024, $0, "peer") }))
    }
}

extension Array {
    /// The elements starting at `offset` (modulo the count), wrapping around.
    func rotated(by offset: Int) -> [Element] {
        guard !isEmpty else { return self }
        let start = offset % count
        return Array(self[start...] + self[..<start])
    }
}
