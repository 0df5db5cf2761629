import AgentTestSupport
import FakeSmartcar
import Foundation

/// Agents on simulated hosts sharing one PostgreSQL store: the hosts, a PostgreSQL server of the fleet's own
/// listening on their links (so a test may restart or stop it), a fresh database, and one fake Smartcar every
/// host reaches at 127.0.0.1.
final class HostFleet: Sendable {
    let fake: FakeSmartcar
    let hosts: [SimulatedHost]
    let cluster: PostgresCluster
    /// The database the store lives in.
    let database: String

    /// Makes the fleet on a thread of its own (starting a PostgreSQL server blocks for a while).
    static func start(
        hostNames: [String] = ["host-a", "host-b"], fake options: FakeSmartcar.Options = .init()
    ) async throws -> HostFleet {
        try await onOwnThread { try HostFleet(hostNames: hostNames, fake: options) }
    }

    private init(hostNames: [String], fake options: FakeSmartcar.Options) throws {
        fake = try FakeSmartcar(options: options)
        hosts = try hostNames.map { try SimulatedHost(hostName: $0) }
        for host in hosts { try host.expose(fake) }
        cluster = try PostgresCluster(listenAddresses: ["127.0.0.1"] + hosts.map(\.hostSideAddress))
        let uri = try cluster.createDatabase("hosts")
        database = String(uri.split(separator: "/").last!)
    }

    deinit { fake.stop() }

    /// The store's URI as `host` reaches it: this machine's side of its link.
    func storeURI(from host: SimulatedHost) -> String {
        cluster.uri(database: database, host: host.hostSideAddress)
    }

    /// Starts an agent on `host` with the fleet's store and the fake's credentials.
    func agent(on host: SimulatedHost, _ arguments: [String] = []) throws -> AgentProcess {
        try host.start(
            arguments: ["--store", storeURI(from: host), "--log-level", "debug"] + arguments,
            environment: fake.agentEnvironment)
    }

    /// One value the store's database answers `sql` with (psql's unaligned output).
    func query(_ sql: String) async throws -> String {
        try await onOwnThread { [cluster, database] in try cluster.psql(sql, database: database) }
    }
}
