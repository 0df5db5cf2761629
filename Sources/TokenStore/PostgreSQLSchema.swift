import AgentSupport

/// The store's tables in their own PostgreSQL schema (default `smartcar_auth`), versioned in `store_meta`.
///
/// Many agents may start at once on a new database: the migration runs in one transaction under a transaction
/// advisory lock (held only while migrating), and reads the version again once it holds the lock, so the schema
/// is built once. A database whose version is newer than this agent knows is refused (`.futureSchema`).
enum PostgreSQLSchema {
    /// `migrations[i]` brings the schema from version `i` to `i + 1`. Append new steps; never edit a released one.
    /// Times are Unix seconds as `double precision` (a `Date` round-trips exactly); keys compare by bytes
    /// (`COLLATE "C"`), as on SQLite.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE store_meta (
                id integer PRIMARY KEY CHECK (id = 1),
                version integer NOT NULL,
                last_sequence bigint NOT NULL,
                change_log_pruned_through bigint NOT NULL,
                unbound_rows_claimable boolean NOT NULL
            )
            """,
            "INSERT INTO store_meta VALUES (1, 0, 0, 0, true)",
            """
            CREATE TABLE tokens (
                application text COLLATE "C" NOT NULL,
                key text COLLATE "C" NOT NULL,
                access_token text NOT NULL,
                refresh_token text NOT NULL,
                expires_at double precision NOT NULL,
                refresh_expires_at double precision,
                scope text,
                generation bigint NOT NULL,
                last_refreshed_at double precision,
                needs_reauth boolean NOT NULL DEFAULT false,
                lease_owner text,
                lease_expires_at double precision,
                updated_at double precision NOT NULL,
                connect_options text,
                PRIMARY KEY (application, key)
            )
            """,
            "CREATE INDEX tokens_by_refresh_expiry ON tokens (application, refresh_expires_at)",
            "CREATE INDEX tokens_by_key ON tokens (key)",
            """
            CREATE TABLE changes (
                seq bigint PRIMARY KEY,
                application text COLLATE "C" NOT NULL,
                key text COLLATE "C" NOT NULL,
                kind text NOT NULL,
                origin text NOT NULL,
                changed_at double precision NOT NULL
            )
            """,
            "CREATE INDEX changes_by_application ON changes (application, seq)",
            """
            CREATE TABLE connect_states (
                id bigserial PRIMARY KEY,
                application text COLLATE "C" NOT NULL,
                state text COLLATE "C" NOT NULL,
                key text,
                options text,
                expires_at double precision NOT NULL,
                consumed_at double precision,
                UNIQUE (application, state)
            )
            """,
            "CREATE INDEX connect_states_by_expiry ON connect_states (expires_at)",
        ],
        // Version 2, sealed tokens: the store's id and random salt (from the server's strong random source) and
        // the fingerprint of each application's key. Token columns then hold base64 of sealed values.
        [
            "ALTER TABLE store_meta ADD COLUMN store_id text, ADD COLUMN sealing_salt bytea",
            """
            UPDATE store_meta SET store_id = gen_random_uuid()::text,
                sealing_salt = decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
            """,
            """
            CREATE TABLE sealing_keys (
                application text COLLATE "C" PRIMARY KEY,
                fingerprint text NOT NULL,
                source text NOT NULL,
                sealed_at double precision NOT NULL
            )
            """,
        ],
    ]

    static var currentVersion: Int { migrations.count }

    /// A schema name the agent accepts: a lower-case SQL identifier short enough to name the change channel.
    static func validate(_ schema: String) throws(StoreError) {
        let valid =
            !schema.isEmpty && schema.utf8.count <= 48
            && schema.utf8.allSatisfy { $0 == 0x5F || (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) }
            && !(0x30...0x39).contains(schema.utf8.first!)
        guard valid else {
            throw StoreError(
                .io,
                "'\(schema)' is not a usable PostgreSQL schema name: use lower-case letters, digits and _ (at most 48, not starting with a digit)"
            )
        }
    }

    static func quoted(_ identifier: String) -> String { "\"\(identifier)\"" }

    /// The `LISTEN`/`NOTIFY` channel of the store's changes (payload: the change's sequence number).
    static func channel(_ schema: String) -> String { "\(schema)_changes" }

    /// The schema's version: 0 when it has no tables yet.
    static func version(_ connection: PostgreSQLConnection, schema: String) throws(PostgreSQLFailure) -> Int {
        let exists = try connection.execute("SELECT to_regclass($1) IS NOT NULL", ["\(quoted(schema)).store_meta"])
        guard exists.rows.first?.first == "t" else { return 0 }
        return Int(try connection.execute("SELECT version FROM store_meta WHERE id = 1").value ?? "") ?? 0
    }

    /// Brings the schema to `currentVersion` (see the type's comment); throws `.futureSchema` for a newer one.
    static func migrate(_ connection: PostgreSQLConnection, schema: String, displayName: String) throws(StoreError) {
        var found = 0
        do throws(PostgreSQLFailure) {
            found = try version(connection, schema: schema)
            if found == currentVersion { return }
            if found < currentVersion {
                try connection.execute("BEGIN")
                do throws(PostgreSQLFailure) {
                    try connection.execute(
                        "SELECT pg_advisory_xact_lock(hashtext($1))", ["smartcar-auth-agent \(schema)"])
                    try connection.execute("CREATE SCHEMA IF NOT EXISTS \(quoted(schema))")
                    found = try version(connection, schema: schema)
                    if found < currentVersion {
                        for step in migrations[found...] { for sql in step { try connection.execute(sql) } }
                        try connection.execute("UPDATE store_meta SET version = $1 WHERE id = 1", ["\(currentVersion)"])
                    }
                    try connection.execute("COMMIT")
                } catch {
                    if !error.connectionLost { _ = try? connection.execute("ROLLBACK") }
                    throw error
                }
            }
        } catch {
            throw error.storeError("could not prepare the schema \(schema) of PostgreSQL \(displayName)")
        }
        guard found <= currentVersion else {
            throw StoreError(
                .futureSchema,
                "PostgreSQL \(displayName) schema \(schema) has version \(found), newer than version \(currentVersion) that this smartcar-auth-agent knows; it was written by a newer agent"
            )
        }
    }

    /// Rows stored without an application (by an agent without a client id) belong to the first application that
    /// opens the store for one, as on SQLite (`Schema.claimUnboundRows`): claimed once, in one transaction.
    static func claimUnboundRows(
        for application: String, _ connection: PostgreSQLConnection, displayName: String, logger: Logger
    ) throws(StoreError) {
        guard !application.isEmpty else { return }
        do throws(PostgreSQLFailure) {
            guard try connection.execute("SELECT unbound_rows_claimable FROM store_meta WHERE id = 1").rows == [["t"]]
            else { return }
            try connection.execute("BEGIN")
            do throws(PostgreSQLFailure) {
                let claimable = try connection.execute(
                    "SELECT unbound_rows_claimable FROM store_meta WHERE id = 1 FOR UPDATE")
                guard claimable.rows == [["t"]] else {
                    try connection.execute("ROLLBACK")
                    return
                }
                let claimed = try connection.execute(
                    "UPDATE tokens SET application = $1 WHERE application = ''", [application]
                ).affected
                try connection.execute(
                    "UPDATE connect_states SET application = $1 WHERE application = ''", [application])
                try connection.execute("UPDATE store_meta SET unbound_rows_claimable = false WHERE id = 1")
                try connection.execute("COMMIT")
                if claimed > 0 {
                    logger.notice(
                        "token store \(displayName): \(claimed) key\(claimed == 1 ? "" : "s") stored without an application now belong to application \(application)"
                    )
                }
            } catch {
                if !error.connectionLost { _ = try? connection.execute("ROLLBACK") }
                throw error
            }
        } catch {
            throw error.storeError("could not bind the existing keys of \(displayName) to application \(application)")
        }
    }
}
