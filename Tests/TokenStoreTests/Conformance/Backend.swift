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
    let makePlace: @Sendable () throws -> BackendPlace
    /// A new place holding `rows` written before rows had an application (what an upgrade finds).
    let makeLegacyPlace: @Sendable (_ rows: [StoredToken]) throws -> BackendPlace

    var testDescription: String { name }

    static let all: [Backend] = [sqliteFile, memory]

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

    private static func sqlitePlace(_ prepare: (String) throws -> Void) throws -> BackendPlace {
        let folder = try TemporaryFolder("tokenstore-conformance")
        let path = folder.file("tokens.sqlite3")
        try prepare(path)
        return BackendPlace(keepAlive: folder) { application, origin, capacity, logger in
            try SQLiteTokenStore.open(
                .file(path), application: application, origin: origin, changeLogCapacity: capacity, logger: logger)
        }
    }

    private static func memoryPlace(_ database: MemoryTokenDatabase) -> BackendPlace {
        BackendPlace(keepAlive: database) { application, origin, capacity, logger in
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
        for row in rows {
            let insert = try connection.prepared(
                """
                INSERT INTO tokens (key, access_token, refresh_token, expires_at, refresh_expires_at, scope,
                    generation, last_refreshed_at, needs_reauth, updated_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)
                """)
            insert.bind(1, row.key)
            insert.bind(2, row.accessToken)
            insert.bind(3, row.refreshToken)
            insert.bind(4, row.expiresAt.timeIntervalSince1970)
            insert.bind(5, row.refreshExpiresAt?.timeIntervalSince1970)
            insert.bind(6, row.scope)
            insert.bind(7, row.generation)
            insert.bind(8, row.lastRefreshedAt?.timeIntervalSince1970)
            insert.bind(9, Int64(row.needsReauth ? 1 : 0))
            try insert.run()
            insert.reset()
        }
    }
}

/// A shared place of one backend; stores opened on it see each other's writes, as agent processes on one store do.
final class BackendPlace: Sendable {
    private let keepAlive: any Sendable
    private let opener:
        @Sendable (_ application: String, _ origin: String, _ changeLogCapacity: Int, _ logger: Logger) throws ->
            any TokenStore

    init(
        keepAlive: any Sendable,
        opener: @escaping @Sendable (String, String, Int, Logger) throws -> any TokenStore
    ) {
        self.keepAlive = keepAlive
        self.opener = opener
    }

    func open(
        _ application: String = testApplication, origin: String = "origin-1",
        changeLogCapacity: Int = defaultChangeLogCapacity, logger: Logger = .silent
    ) throws -> any TokenStore {
        try opener(application, origin, changeLogCapacity, logger)
    }
}
