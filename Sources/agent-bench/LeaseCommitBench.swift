import Foundation
import TokenStore

/// One refresh's durable cost on each store alone, through the `TokenStore` API: take the key's lease (the row
/// re-read under it), then commit the rotated tokens fenced on the spent ones. These two transactions are what a
/// refresh adds to Smartcar's answer; on PostgreSQL each is a round trip to the server and a durable commit. The
/// backends' samples interleave, so noise hits them alike; keys are picked at random among 1,000.
extension Bench {
    func runLeaseCommit(into report: inout Report) throws {
        let keys = 1_000, warmup = 20, samples = options.leaseCommitSamples
        progress(
            "lease + fenced commit through the TokenStore API on \(backends.map(\.rawValue).joined(separator: " and ")): \(samples) refreshes each"
        )
        let now = Date()
        var stores: [(BenchStore.Backend, any TokenStore)] = []
        for backend in backends {
            let place = try freshStore(backend, "lease-commit")
            try StoreFixtures.fill(place, count: keys) { StoreFixtures.syntheticToken($0, now: now) }
            stores.append((backend, try place.open()))
        }
        let floor = try FsyncFloor(path: storeFolder + "/lease-commit-fsync-floor")
        // nil stands for the fsync floor; the order rotates every sample.
        let subjects: [(BenchStore.Backend, any TokenStore)?] = stores + [nil]
        let timings = try blockingAwait { () async throws -> [BenchStore.Backend?: [Double]] in
            var generator = SystemRandomNumberGenerator()
            var timings: [BenchStore.Backend?: [Double]] = [:]
            for index in 0..<(warmup + samples) {
                for subject in subjects.rotated(by: index) {
                    let key = StoreFixtures.key(Int.random(in: 0..<keys, using: &generator))
                    let started = Monotonic.now()
                    if let (_, store) = subject {
                        try await Bench.refreshOnce(store, key: key, tag: index)
                    } else {
                        floor.twoCommits()
                    }
                    if index >= warmup {
                        timings[subject?.0, default: []].append(
                            Monotonic.milliseconds(from: started, to: Monotonic.now()))
                    }
                }
            }
            for case let (_, store)? in subjects { await store.close() }
            return timings
        }
        let sqlite = Statistics(timings[.sqlite] ?? []), postgres = timings[.postgres].map(Statistics.init)
        let fsyncs = Statistics(timings[nil] ?? [])
        for (id, label, p) in [("median", "median", 50.0), ("p99", "p99", 99.0)] {
            var row = Row(
                id: "leaseCommit.\(id)",
                measure:
                    "one refresh's lease + fenced commit, store alone, \(label) (ms, \(samples) refreshes; floor = 2 fsyncs)",
                unit: "ms", agent: sqlite.percentile(p), postgres: postgres?.percentile(p), floor: fsyncs.percentile(p),
                peerNote: "n/a")
            if id == "median", let postgres {
                row.target = "PostgreSQL ≤ 3"
                row.verdict = postgres.median <= 3 ? .met : .missed
            }
            report.add(row)
        }
    }
}
