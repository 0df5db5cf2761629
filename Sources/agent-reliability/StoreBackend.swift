import AgentTestSupport
import FakeSmartcar

/// Which store a suite's agents share: a SQLite file, or a database of a PostgreSQL cluster.
enum StoreBackend: Sendable {
    case sqlite
    case postgres(PostgresCluster)

    var name: String {
        switch self {
        case .sqlite: "SQLite"
        case .postgres: "PostgreSQL"
        }
    }

    /// A fresh, empty store: the file's path in `folder`, or a new database's URI (the `--store` argument).
    func makeStore(in folder: TemporaryFolder) throws -> String {
        switch self {
        case .sqlite: folder.file("tokens.sqlite3")
        case .postgres(let cluster): try cluster.createDatabase("reliability")
        }
    }

    /// The suite's own connection to `store` (made by `makeStore`).
    func inspector(of store: String) throws -> any StoreInspector {
        switch self {
        case .sqlite: try SQLiteStoreInspector(path: store, clientSecret: FakeSmartcar.Options().clientSecret)
        case .postgres: try PostgreSQLStoreInspector(uri: store, clientSecret: FakeSmartcar.Options().clientSecret)
        }
    }
}
