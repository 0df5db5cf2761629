/// Where the agents of a fleet run: all on this host, or spread over simulated hosts (each its own network
/// namespace and host name, reaching the store's server over a link of its own).
struct FleetPlaces {
    let count: Int
    /// For the progress line, e.g. "all on this host".
    let summary: String
    /// The store as agent `index` reaches it.
    let store: (_ index: Int, _ store: BenchStore) -> BenchStore
    /// How agent `index` is started where it runs.
    let recipe: (_ index: Int, _ recipe: Sidecars.Recipe) -> Sidecars.Recipe

    static func thisHost(_ count: Int) -> FleetPlaces {
        FleetPlaces(count: count, summary: "all on this host", store: { $1 }, recipe: { $1 })
    }
}

extension Bench {
    /// The fleet's places for `backend`: SQLite cannot span hosts, so its agents all run here.
    func fleetPlaces(_ backend: BenchStore.Backend, agents: Int) throws -> FleetPlaces {
        .thisHost(agents)
    }
}
