import AgentTestSupport
import Foundation
import Synchronization
import TokenStore

/// The PostgreSQL server the bench compares SQLite with: a throwaway cluster it starts itself (`--postgres`), or
/// a server the user runs (`--store postgresql://…`). Each use gets an empty store of its own: a fresh database
/// in the throwaway cluster, a fresh schema `agent_bench_PID_N` on the user's server (dropped at the end).
final class PostgresServer: Sendable {
    private enum Kind {
        case throwaway(PostgresCluster)
        case given(String)
    }

    private let kind: Kind
    /// For the table's header: which server, never its password.
    let displayName: String
    /// The schemas created on the user's server, to drop at the end.
    private let schemas = Mutex<[String]>([])
    private let counter = Atomic<Int>(0)

    /// `listenAddresses`: where a throwaway cluster listens (loopback, plus the host side of simulated hosts). A
    /// server given is tried at once (a store opened and closed), so a wrong URI fails before any measure.
    init(_ choice: BenchOptions.PostgresChoice, listenAddresses: [String] = ["127.0.0.1"]) throws {
        switch choice {
        case .throwaway:
            let cluster = try PostgresCluster(listenAddresses: listenAddresses)
            kind = .throwaway(cluster)
            displayName = "a throwaway cluster on 127.0.0.1:\(cluster.port)"
        case .uri(let uri):
            kind = .given(uri)
            let schema = "agent_bench_\(getpid())_0"
            schemas.withLock { $0.append(schema) }
            let store = try PostgreSQLTokenStore.open(
                uri, application: StoreFixtures.application, schema: schema, sealing: StoreFixtures.secrets)
            displayName = store.displayName
            try blockingAwait { await store.close() }
        }
    }

    /// Whether agents on simulated hosts can reach it (only a cluster the bench started listens on their links).
    var servesSimulatedHosts: Bool {
        if case .throwaway = kind { return true }
        return false
    }

    /// A fresh, empty store named after `label`.
    func freshStore(_ label: String) throws -> BenchStore {
        let number = counter.add(1, ordering: .relaxed).newValue
        switch kind {
        case .throwaway(let cluster):
            let database = "bench_\(label.filter { $0.isLetter || $0.isNumber })_\(number)"
            try cluster.psql("CREATE DATABASE \(database)")
            return BenchStore(place: .postgres(uri: cluster.uri(database: database), schema: "smartcar_auth"))
        case .given(let uri):
            let schema = "agent_bench_\(getpid())_\(number)"
            schemas.withLock { $0.append(schema) }
            return BenchStore(place: .postgres(uri: uri, schema: schema))
        }
    }

    /// `store` as an agent on a simulated host reaches it: over the host's link to `address`.
    func store(_ store: BenchStore, reachedAt address: String) -> BenchStore {
        guard case .throwaway(let cluster) = kind, case .postgres(let uri, let schema) = store.place,
            let database = uri.split(separator: "/").last
        else { return store }
        return BenchStore(place: .postgres(uri: cluster.uri(database: String(database), host: address), schema: schema))
    }

    /// Drops the schemas made on the user's server (with `psql`, when it is on PATH); answers what is left behind.
    func dropSchemas() -> String? {
        guard case .given(let uri) = kind else { return nil }
        let made = schemas.withLock { $0 }
        guard !made.isEmpty else { return nil }
        let sql = made.map { "DROP SCHEMA IF EXISTS \($0) CASCADE;" }.joined(separator: " ")
        if let psql = Sidecars.which("psql"),
            Sidecars.capture(psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", uri, "-c", sql], [:]).status == 0
        {
            return nil
        }
        return "could not drop the schemas \(made.joined(separator: ", ")) (no psql on PATH, or it failed)"
    }
}
