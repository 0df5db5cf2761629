import Foundation
import TokenStore

/// A fresh, empty token store for one use: what the agents the bench starts are pointed at, and what the bench
/// opens itself to fill it or to time the store alone. SQLite is a file of the work folder; PostgreSQL a database
/// or a schema of its own (`PostgresServer`), so no measure sees another's rows.
struct BenchStore: Sendable {
    enum Backend: String, Sendable, CaseIterable {
        case sqlite = "SQLite", postgres = "PostgreSQL"

        /// The name of an agent process on this backend (logs, the transport's subjects).
        var agentName: String { self == .sqlite ? "agent" : "agent-postgresql" }
    }

    enum Place: Sendable {
        case file(String)
        /// A libpq URI and the schema in it (`--store-schema`).
        case postgres(uri: String, schema: String)
    }

    let place: Place

    var backend: Backend {
        switch place {
        case .file: .sqlite
        case .postgres: .postgres
        }
    }

    /// A SQLite store at `path` (created by its first opener).
    static func sqlite(_ path: String) -> BenchStore { BenchStore(place: .file(path)) }

    /// The agent's `--store` arguments for this store.
    var agentArguments: [String] {
        switch place {
        case .file(let path): ["--store", path]
        case .postgres(let uri, let schema): ["--store", uri, "--store-schema", schema]
        }
    }

    /// The store opened by the bench for the fake Smartcar's application, attributed to `origin`, sealed as the
    /// agents seal it (`sealed` false: a SQLite store left unsealed, to weigh what sealing costs).
    func open(origin: String = "agent-bench", sealed: Bool = true) throws -> any TokenStore {
        switch place {
        case .file(let path):
            try SQLiteTokenStore.open(
                .file(path), application: StoreFixtures.application, origin: origin,
                sealing: sealed ? StoreFixtures.secrets : nil)
        case .postgres(let uri, let schema):
            try PostgreSQLTokenStore.open(
                uri, application: StoreFixtures.application, origin: origin, schema: schema,
                sealing: StoreFixtures.secrets)
        }
    }
}
