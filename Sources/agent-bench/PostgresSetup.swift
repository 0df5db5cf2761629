import AgentTestSupport
import FakeSmartcar
import Synchronization

/// The simulated hosts of a run, held so that the end of the run can remove them (`main` exits with `exit`, so no
/// deinit would run otherwise).
final class SimulatedHosts: Sendable {
    private let hosts: Mutex<[SimulatedHost]>

    init(_ hosts: [SimulatedHost]) { self.hosts = Mutex(hosts) }

    var all: [SimulatedHost] { hosts.withLock { $0 } }

    /// Drops them: each removes its namespace and link.
    func removeAll() { hosts.withLock { $0.removeAll() } }
}

extension Bench {
    /// What a run with PostgreSQL needs beyond SQLite: the server and, for the fleet storm on a throwaway cluster,
    /// two simulated hosts made first (the cluster listens on their links) with `slow` reachable in each.
    struct PostgresSetup {
        var server: PostgresServer?
        var hosts = SimulatedHosts([])
        /// Why the fleet storm's PostgreSQL agents run on this host, when they do.
        var hostsNote: String?
    }

    static func setUpPostgres(options: BenchOptions, slow: FakeSmartcar) throws -> PostgresSetup {
        guard let choice = options.postgres else { return PostgresSetup() }
        var setup = PostgresSetup()
        if options.sections.contains(.fleetStorm) {
            if choice != .throwaway {
                setup.hostsNote = "simulated hosts only with --postgres"
            } else if !SimulatedHost.isAvailable {
                setup.hostsNote = "simulated hosts need root, ip and unshare"
            } else {
                let hosts = try ["bench-host-a", "bench-host-b"].map { try SimulatedHost(hostName: $0) }
                for host in hosts { try host.expose(slow) }
                setup.hosts = SimulatedHosts(hosts)
            }
        }
        progress(choice == .throwaway ? "starting a throwaway PostgreSQL cluster" : "using the PostgreSQL server given")
        setup.server = try PostgresServer(
            choice, listenAddresses: ["127.0.0.1"] + setup.hosts.all.map(\.hostSideAddress))
        return setup
    }
}
