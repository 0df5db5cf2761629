/// Where the agents of a fleet run: all on this host, or spread over simulated hosts (each its own network
/// namespace and host name, reaching the store's server over a link of its own).
struct FleetPlaces {
    let count: Int
    /// For the progress line, e.g. "all on this host".
    var summary: String
    /// The store as agent `index` reaches it.
    let store: (_ index: Int, _ store: BenchStore) -> BenchStore
    /// How agent `index` is started where it runs.
    let recipe: (_ index: Int, _ recipe: Sidecars.Recipe) -> Sidecars.Recipe

    static func thisHost(_ count: Int) -> FleetPlaces {
        FleetPlaces(count: count, summary: "all on this host", store: { $1 }, recipe: { $1 })
    }
}

extension Bench {
    /// The fleet's places for `backend`: SQLite cannot span hosts, so its agents all run here; on PostgreSQL agent
    /// i runs on simulated host i mod 2 when there are simulated hosts (`simulatedHostsNote` says why not).
    func fleetPlaces(_ backend: BenchStore.Backend, agents: Int) -> FleetPlaces {
        let hosts = simulatedHosts.all
        guard backend == .postgres, let postgres, !hosts.isEmpty else {
            var places = FleetPlaces.thisHost(agents)
            if backend == .postgres, let simulatedHostsNote { places.summary += "; \(simulatedHostsNote)" }
            return places
        }
        return FleetPlaces(
            count: agents,
            summary: "spread over the simulated hosts \(hosts.map(\.hostName).joined(separator: " and "))",
            store: { index, store in postgres.store(store, reachedAt: hosts[index % hosts.count].hostSideAddress) },
            recipe: { index, recipe in
                let line = hosts[index % hosts.count].commandLine([recipe.executable] + recipe.arguments)
                return Sidecars.Recipe(
                    name: recipe.name, executable: line[0], arguments: Array(line.dropFirst()),
                    environment: recipe.environment)
            })
    }
}
