import AgentSupport

/// The database layout, and the ordered migrations that build it from an empty file.
///
/// `schema_version` holds one row with the version; a file with a higher version than `currentVersion`
/// was written by a newer agent and is refused (`futureSchema`) rather than guessed at.
enum Schema {
    /// `migrations[i]` brings a database from version `i` to `i + 1`; version 0 is an empty file.
    /// Append new steps; never edit a released one.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE schema_version (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                version INTEGER NOT NULL
            )
            """,
            // Times are Unix seconds (REAL, sub-second precision).
            """
            CREATE TABLE tokens (
                key TEXT PRIMARY KEY NOT NULL,
                access_token TEXT NOT NULL,
                refresh_token TEXT NOT NULL,
                expires_at REAL NOT NULL,
                refresh_expires_at REAL,
                scope TEXT,
                generation INTEGER NOT NULL,
                last_refreshed_at REAL,
                needs_reauth INTEGER NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_expires_at REAL,
                updated_at REAL NOT NULL
            ) WITHOUT ROWID
            """,
            "CREATE INDEX tokens_by_refresh_expiry ON tokens (refresh_expires_at)",
        ],
        // Version 2: rows bound to their application (existing rows get "" until claimed, see `claimUnboundRows`),
        // the grant's Connect options, Connect states and the change log.
        [
            """
            CREATE TABLE tokens_by_application (
                application TEXT NOT NULL,
                key TEXT NOT NULL,
                access_token TEXT NOT NULL,
                refresh_token TEXT NOT NULL,
                expires_at REAL NOT NULL,
                refresh_expires_at REAL,
                scope TEXT,
                generation INTEGER NOT NULL,
                last_refreshed_at REAL,
                needs_reauth INTEGER NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_expires_at REAL,
                updated_at REAL NOT NULL,
                connect_options TEXT,
                PRIMARY KEY (application, key)
            ) WITHOUT ROWID
            """,
            """
            INSERT INTO tokens_by_application (application, key, access_token, refresh_token, expires_at,
                refresh_expires_at, scope, generation, last_refreshed_at, needs_reauth, lease_owner, lease_expires_at,
                updated_at)
            SELECT '', key, access_token, refresh_token, expires_at, refresh_expires_at, scope, generation,
                last_refreshed_at, needs_reauth, lease_owner, lease_expires_at, updated_at FROM tokens
            """,
            "DROP TABLE tokens",
            "ALTER TABLE tokens_by_application RENAME TO tokens",
            "CREATE INDEX tokens_by_refresh_expiry ON tokens (application, refresh_expires_at)",
            "CREATE INDEX tokens_by_key ON tokens (key)",
            """
            CREATE TABLE store_meta (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                change_log_pruned_through INTEGER NOT NULL,
                unbound_rows_claimable INTEGER NOT NULL
            )
            """,
            "INSERT INTO store_meta (id, change_log_pruned_through, unbound_rows_claimable) VALUES (1, 0, 1)",
            """
            CREATE TABLE changes (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                application TEXT NOT NULL,
                key TEXT NOT NULL,
                kind TEXT NOT NULL,
                origin TEXT NOT NULL,
                changed_at REAL NOT NULL
            )
            """,
            "CREATE INDEX changes_by_application ON changes (application, seq)",
            """
            CREATE TABLE connect_states (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                application TEXT NOT NULL,
                state TEXT NOT NULL,
                key TEXT,
                options TEXT,
                expires_at REAL NOT NULL,
                consumed_at REAL,
                UNIQUE (application, state)
            )
            """,
            "CREATE INDEX connect_states_by_application ON connect_states (application, id)",
            "CREATE INDEX connect_states_by_expiry ON connect_states (expires_at)",
        ],
        // Version 3: sealed token columns (see `TokenSealer`). The store's random id and salt; per application,
        // the fingerprint of the key its rows are sealed with. Token columns then hold BLOBs (sealed) where they
        // held TEXT; `SQLiteSealing.prepare` seals existing rows at the first open with a secret.
        [
            "ALTER TABLE store_meta ADD COLUMN store_id TEXT",
            "ALTER TABLE store_meta ADD COLUMN sealing_salt BLOB",
            "UPDATE store_meta SET store_id = lower(hex(randomblob(16))), sealing_salt = randomblob(32) WHERE id = 1",
            """
            CREATE TABLE sealing_keys (
                application TEXT PRIMARY KEY NOT NULL,
                fingerprint TEXT NOT NULL,
                source TEXT NOT NULL,
                sealed_at REAL NOT NULL,
                -- 0 from the commit that sealed rows anew until VACUUM has scrubbed the values they replaced: an
                -- agent killed in between leaves the scrub to the next one that opens the store.
                scrubbed INTEGER NOT NULL DEFAULT 1
            ) WITHOUT ROWID
            """,
        ],
    ]

    static var currentVersion: Int { migrations.count }

    /// The version of the database behind `connection`: 0 for an empty database. Throws `corrupt` for a
    /// file that is not a token store and `futureSchema` for a newer one; messages name `path`.
    static func version(of connection: SQLiteConnection, path: String) throws(StoreError) -> Int {
        let tables: [String]
        do {
            tables = try connection.firstColumn(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            )
        } catch {
            throw error.storeError("\(path) cannot be read as a SQLite database")
        }
        if tables.isEmpty { return 0 }
        guard tables.contains("schema_version") else {
            throw StoreError(
                .corrupt,
                "\(path) is a SQLite database but not a token store (tables: \(tables.joined(separator: ", ")))")
        }
        let rows: [String]
        do {
            rows = try connection.firstColumn("SELECT version FROM schema_version WHERE id = 1")
        } catch {
            throw error.storeError("\(path) has an unreadable schema_version table")
        }
        guard let text = rows.first, let version = Int(text), version >= 1 else {
            throw StoreError(.corrupt, "\(path) has no valid schema version")
        }
        guard version <= currentVersion else {
            throw StoreError(
                .futureSchema,
                "\(path) has schema version \(version), newer than version \(currentVersion) that this smartcar-auth-agent knows; it was written by a newer agent"
            )
        }
        return version
    }

    /// Brings the database to `currentVersion` in one transaction. The version is read again inside the
    /// write transaction, so two processes opening a new store at once migrate it once.
    static func migrate(_ connection: SQLiteConnection, path: String) throws(StoreError) {
        guard try version(of: connection, path: path) < currentVersion else { return }
        do {
            try connection.execute("BEGIN IMMEDIATE")
        } catch {
            throw error.storeError("could not start migrating \(path)")
        }
        do throws(StoreError) {
            let from = try version(of: connection, path: path)
            for step in migrations[from...] {
                for sql in step {
                    do { try connection.execute(sql) } catch {
                        throw error.storeError("could not migrate \(path) from schema version \(from)")
                    }
                }
            }
            do {
                try connection.execute(
                    "INSERT INTO schema_version (id, version) VALUES (1, \(currentVersion)) ON CONFLICT (id) DO UPDATE SET version = excluded.version"
                )
                try connection.execute("COMMIT")
            } catch {
                throw error.storeError("could not commit the migration of \(path)")
            }
        } catch {
            if connection.isInTransaction { try? connection.execute("ROLLBACK") }
            throw error
        }
    }

    /// Rows written before rows had an application (schema version 1) belong to the first application that opens
    /// the store after the upgrade: it claims them once, in one transaction, and the log says how many. A store
    /// opened without an application ("") claims nothing; later rows without one are never claimed.
    static func claimUnboundRows(
        for application: String, _ connection: SQLiteConnection, path: String, logger: Logger
    ) throws(StoreError) {
        guard !application.isEmpty else { return }
        do throws(SQLiteError) {
            guard try connection.firstColumn("SELECT unbound_rows_claimable FROM store_meta WHERE id = 1") == ["1"]
            else { return }
            try connection.execute("BEGIN IMMEDIATE")
            do throws(SQLiteError) {
                guard try connection.firstColumn("SELECT unbound_rows_claimable FROM store_meta WHERE id = 1") == ["1"]
                else { return try connection.execute("ROLLBACK") }
                let quoted = "'" + application.replacingOccurrences(of: "'", with: "''") + "'"
                let claimed = try connection.firstColumn(
                    "UPDATE tokens SET application = \(quoted) WHERE application = '' RETURNING key"
                ).count
                try connection.execute(
                    "UPDATE connect_states SET application = \(quoted) WHERE application = ''; "
                        + "UPDATE store_meta SET unbound_rows_claimable = 0 WHERE id = 1; COMMIT")
                if claimed > 0 {
                    logger.notice(
                        "token store \(path): \(claimed) key\(claimed == 1 ? "" : "s") stored before keys were bound to an application now belong to application \(application)"
                    )
                }
            } catch {
                if connection.isInTransaction { try? connection.execute("ROLLBACK") }
                throw error
            }
        } catch {
            throw error.storeError("could not bind the existing keys of \(path) to application \(application)")
        }
    }
}
