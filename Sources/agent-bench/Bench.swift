import AgentTestSupport
import FakeSmartcar
import Foundation
import TokenStore

/// What every section of the bench shares: options, the processes to start, two fakes (one answering at
/// once, one with realistic latency for single-flight and the storm), and the prebuilt stores.
struct Bench {
    let options: BenchOptions
    let sidecars: Sidecars
    /// Answers at once: cached reads, store scale, shell client.
    let fast: FakeSmartcar
    /// Answers after `options.latencyMilliseconds`: single-flight and the refresh storm.
    let slow: FakeSmartcar
    let fixtures: Fixtures
    /// The PostgreSQL server compared with SQLite, if any.
    let postgres: PostgresServer?
    /// Two simulated hosts for the fleet storm on PostgreSQL; none when `simulatedHostsNote` says why not.
    let simulatedHosts: SimulatedHosts
    let simulatedHostsNote: String?

    /// The key every cached read asks for; in the sized stores its refresh token is live on `fast`.
    static let cachedKey = StoreFixtures.key(0)

    struct Fixtures {
        /// A store holding only the key that is asked for (the "empty store" of the cold start).
        var agentOne: String
        var peerOne: String
        /// The same on PostgreSQL, when it is compared (cold start and the cached read).
        var postgresOne: BenchStore?
        /// Stores of each size in `options.storeSizes` (plus 100,000 keys, which cold start and RSS need).
        var agentStores: [Int: String]
        /// The peer's JSON stores, up to 100,000 keys (its start-up reads the whole file).
        var peerStores: [Int: String]
    }

    static let largeStoreForStartup = 100_000
    static let largestPeerStore = 100_000

    var storeFolder: String { sidecars.work + "/stores" }

    func logPath(_ name: String) -> String { sidecars.work + "/\(name).stderr" }

    /// The stores compared: SQLite always, PostgreSQL with `--store postgresql://…` or `--postgres`.
    var backends: [BenchStore.Backend] { options.postgres == nil ? [.sqlite] : [.sqlite, .postgres] }

    /// A fresh, empty store of `backend` for one use, named after `label`.
    func freshStore(_ backend: BenchStore.Backend, _ label: String) throws -> BenchStore {
        switch backend {
        case .sqlite: return .sqlite(storeFolder + "/\(label).sqlite3")
        case .postgres:
            guard let postgres else { throw Clients.Failure(description: "no PostgreSQL server in this run") }
            return try postgres.freshStore(label)
        }
    }
}

/// Progress on stderr, so stdout carries only the table (or the JSON).
func progress(_ message: String) {
    FileHandle.standardError.write(Data("agent-bench: \(message)\n".utf8))
}

extension Bench.Fixtures {
    /// The sized stores the chosen sections need.
    static func sizes(for options: BenchOptions) -> [Int] {
        var sizes: Set<Int> = []
        if options.sections.contains(.store) { sizes.formUnion(options.storeSizes + [Bench.largeStoreForStartup]) }
        if options.sections.contains(.coldStart) { sizes.insert(Bench.largeStoreForStartup) }
        return sizes.sorted()
    }

    /// Builds every store the chosen sections use; a 1,000,000-key one takes most of the time (about 10 s).
    static func build(
        options: BenchOptions, folder: String, fast: FakeSmartcar, peer: Bool, postgres: PostgresServer?
    ) throws -> Bench.Fixtures {
        try FileManager.default.createDirectory(
            atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let now = Date()
        let agentOne = folder + "/one.sqlite3", peerOne = folder + "/one.json"
        try StoreFixtures.buildAgentStore(at: agentOne, count: 1) { StoreFixtures.syntheticToken($0, now: now) }
        let postgresOne = try postgres.map { server in
            let store = try server.freshStore("one")
            try StoreFixtures.fill(store, count: 1) { StoreFixtures.syntheticToken($0, now: now) }
            return store
        }
        if peer {
            try StoreFixtures.buildPeerStore(at: peerOne, count: 1) { StoreFixtures.syntheticToken($0, now: now) }
        }

        var agentStores: [Int: String] = [:], peerStores: [Int: String] = [:]
        for size in sizes(for: options) {
            progress("building a \(Report.grouped(Double(size)))-key store")
            let path = folder + "/keys-\(size).sqlite3"
            let minted = live(fast, now: now)
            try StoreFixtures.buildAgentStore(at: path, count: size) {
                $0 == 0 ? minted : StoreFixtures.syntheticToken($0, now: now)
            }
            agentStores[size] = path
            if peer && size <= Bench.largestPeerStore {
                let peerPath = folder + "/keys-\(size).json"
                let peerMinted = live(fast, now: now)
                try StoreFixtures.buildPeerStore(at: peerPath, count: size) {
                    $0 == 0 ? peerMinted : StoreFixtures.syntheticToken($0, now: now)
                }
                peerStores[size] = peerPath
            }
        }
        return Bench.Fixtures(
            agentOne: agentOne, peerOne: peerOne, postgresOne: postgresOne, agentStores: agentStores,
            peerStores: peerStores)
    }

    /// Row 0 of a sized store: valid tokens minted by `fake`, so a forced refresh of it succeeds.
    private static func live(_ fake: FakeSmartcar, now: Date) -> StoredToken {
        let pair = fake.mintTokens(userID: "bench")
        var token = StoreFixtures.syntheticToken(0, now: now)
        token.accessToken = pair.accessToken
        token.refreshToken = pair.refreshToken
        return token
    }
}
