import AgentSupport
import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

/// One store implementation, as the backend conformance suite sees it: a way to make a shared place (a file, a
/// database) and open stores on it the way separate agent processes would. Every conformance test runs against
/// every backend in `Backend.all`; a new backend (PostgreSQL, issue 14) is added there and must pass unchanged.
struct Backend: Sendable, CustomTestStringConvertible {
    let name: String
    /// A new, empty place.
    let makePlace: @Sendable () async throws -> BackendPlace
    /// A new place holding `rows` written before rows had an application (what an upgrade finds).
    let makeLegacyPlace: @Sendable (_ rows: [StoredToken]) async throws -> BackendPlace

    var testDescription: String { name }

    static let all: [Backend] = [sqliteFile, memory, postgres]

    /// `SQLiteTokenStore` on a file in a temporary folder: each store is its own SQLite connection.
    static let sqliteFile = Backend(
        name: "SQLite file",
        makePlace: { try sqlitePlace { _ in } },
        makeLegacyPlace: { rows in try sqlitePlace { path in try writeVersionOneStore(path, rows) } })

    /// `MemoryTokenStore`: each store is a handle on one shared `MemoryTokenDatabase`.
    static let memory = Backend(
        name: "memory",
        makePlace: { memoryPlace(MemoryTokenDatabase()) },
        makeLegacyPlace: { rows in memoryPlace(MemoryTokenDatabase(unboundRows: rows)) })

    /// `PostgreSQLTokenStore` on a fresh database of the test process's cluster: each store has its own
    /// connections. Leases are timed by the caller's `now`, so the suite's simulated times work.
    static let postgres = Backend(
        name: "PostgreSQL",
        makePlace: { try await postgresPlace().place },
        makeLegacyPlace: { rows in
            let (place, cluster, uri) = try await postgresPlace()
            // Rows stored without an application, as an agent without a client id writes them.
            let schemaMaker = try PostgreSQLTokenStore.open(uri, application: "")
            schemaMaker.listener.stop()
            func literal(_ value: String?) -> String {
                value.map { "'\($0.replacingOccurrences(of: "'", with: "''"))'" } ?? "NULL"
            }
            func literal(_ date: Date?) -> String { date.map { "\($0.timeIntervalSince1970)" } ?? "NULL" }
            for row in rows {
                try cluster.psql(
                    """
                    INSERT INTO smartcar_auth.tokens (application, key, access_token, refresh_token, expires_at,
                        refresh_expires_at, scope, generation, last_refreshed_at, needs_reauth, updated_at)
                    VALUES ('', \(literal(row.key)), \(literal(row.accessToken)), \(literal(row.refreshToken)),
                        \(literal(row.expiresAt)), \(literal(row.refreshExpiresAt)), \(literal(row.scope)),
                        \(row.generation), \(literal(row.lastRefreshedAt)), \(row.needsReauth), 0)
                    """, database: String(uri.split(separator: "/").last!))
            }
            return place
        })

    private static func postgresPlace() async throws -> (place: BackendPlace, cluster: PostgresCluster, uri: String) {
        let cluster = try await PostgresCluster.shared
        let uri = try cluster.createDatabase("conformance")
        return (postgresPlace(uri, cluster), cluster, uri)
    }

    private static func postgresPlace(_ uri: String, _ cluster: PostgresCluster) -> BackendPlace {
        let database = String(uri.split(separator: "/").last!)
        return BackendPlace(
            keepAlive: uri,
            raw: RawPlace(
                execute: { sql in
                    try cluster.psql("SET search_path = smartcar_auth; \(sql)", database: database)
                },
                storedBytes: {
                    // Without pg_dump's `\restrict` lines, whose random key differs in every dump.
                    let lines = try cluster.dump(database: database).split(
                        separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                    let kept = lines.filter {
                        !$0.starts(with: Array("\\restrict".utf8)) && !$0.starts(with: Array("\\unrestrict".utf8))
                    }
                    return ["pg_dump \(database)": Array(kept.joined(separator: [UInt8(ascii: "\n")]))]
                })
        ) { application, origin, capacity, secrets, logger in
            try PostgreSQLTokenStore.open(
                uri, application: application, origin: origin, leaseClock: .caller, changeLogCapacity: capacity,
                sealing: secrets, logger: logger)
        }
    }

    private static func sqlitePlace(_ prepare: (String) throws -> Void) throws -> BackendPlace {
        let folder = try TemporaryFolder("tokenstore-conformance")
        let path = folder.file("tokens.sqlite3")
        try prepare(path)
        return BackendPlace(
            keepAlive: folder,
            raw: RawPlace(
                execute: { sql in
                    let connection = try SQLiteConnection(path: path, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
                    defer { connection.close() }
                    return try connection.firstColumn(sql).joined(separator: "\n")
                },
                storedBytes: {
                    var files: [String: [UInt8]] = [:]
                    for suffix in ["", "-wal", "-shm"] { files[path + suffix] = bytes(of: path + suffix) }
                    return files
                })
        ) { application, origin, capacity, secrets, logger in
            try SQLiteTokenStore.open(
                .file(path), application: application, origin: origin, sealing: secrets, changeLogCapacity: capacity,
                logger: logger)
        }
    }

    private static func memoryPlace(_ database: MemoryTokenDatabase) -> BackendPlace {
        BackendPlace(keepAlive: database, raw: nil) { application, origin, capacity, _, logger in
            MemoryTokenStore(
                database: database, application: application, origin: origin, changeLogCapacity: capacity,
                logger: logger)
        }
    }

    /// A store file as schema version 1 (before rows had an application) wrote it, holding `rows`.
    private static func writeVersionOneStore(_ path: String, _ rows: [StoredToken]) throws {
        try StoreFiles.createPrivateFile(path)
        let connection = try SQLiteConnection(path: path, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        defer { connection.close() }
        for sql in Schema.migrations[0] { try connection.execute(sql) }
        try connection.execute("INSERT INTO schema_version (id, version) VALUES (1, 1)")
        func literal(_ value: String?) -> String {
            value.map { "'\($0.replacingOccurrences(of: "'", with: "''"))'" } ?? "NULL"
        }
        func literal(_ date: Date?) -> String { date.map { "\($0.timeIntervalSince1970)" } ?? "NULL" }
        for row in rows {
            try connection.execute(
                """
                INSERT INTO tokens (key, access_token, refresh_token, expires_at, refresh_expires_at, scope,
                    generation, last_refreshed_at, needs_reauth, updated_at)
                VALUES (\(literal(row.key)), \(literal(row.accessToken)), \(literal(row.refreshToken)),
                    \(literal(row.expiresAt)), \(literal(row.refreshExpiresAt)), \(literal(row.scope)), \(row.generation),
                    \(literal(row.lastRefreshedAt)), \(row.needsReauth ? 1 : 0), 0)
                """)
        }
    }
}

/// The stored form of a place, read and written beside the store (what a backup, an administrator or an attacker
/// holding the files sees): nil for the memory store, which keeps nothing anywhere else.
struct RawPlace: Sendable {
    /// Runs SQL on the place's tables through a connection of its own; answers its output.
    let execute: @Sendable (String) throws -> String
    /// Every byte the place keeps, by where it came from: the SQLite file, its WAL and SHM; a `pg_dump`.
    let storedBytes: @Sendable () throws -> [String: [UInt8]]
}

/// A shared place of one backend; stores opened on it see each other's writes, as agent processes on one store do.
/// Stores are opened sealed with `testSecrets` unless a test gives other secrets (or none).
final class BackendPlace: Sendable {
    private let keepAlive: any Sendable
    let raw: RawPlace?
    private let opener:
        @Sendable (
            _ application: String, _ origin: String, _ changeLogCapacity: Int, _ secrets: StoreSecrets?,
            _ logger: Logger
        ) throws -> any TokenStore

    init(
        keepAlive: any Sendable, raw: RawPlace?,
        opener: @escaping @Sendable (String, String, Int, StoreSecrets?, Logger) throws -> any TokenStore
    ) {
        self.keepAlive = keepAlive
        self.raw = raw
        self.opener = opener
    }

    func open(
        _ application: String = testApplication, origin: String = "origin-1",
        changeLogCapacity: Int = defaultChangeLogCapacity, sealing secrets: StoreSecrets? = testSecrets,
        logger: Logger = .silent
    ) throws -> any TokenStore {
        try opener(application, origin, changeLogCapacity, secrets, logger)
    }
}
