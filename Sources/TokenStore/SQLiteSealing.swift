import AgentSupport
import Foundation

/// A SQLite store's sealing, set up for one application when the store opens (`TokenSealer` does the crypto).
enum SQLiteSealing {
    /// Checks `secrets` against the fingerprint the store keeps for `application` and returns the sealer, after
    /// sealing what is not sealed yet, in one transaction:
    /// - no fingerprint yet: every plaintext row of the application is sealed (an upgrade) and the fingerprint
    ///   recorded;
    /// - the fingerprint of `secrets.previous`: every row is re-sealed under `secrets.current` (a rotation);
    /// - any other fingerprint: `.wrongKey`, and nothing is written.
    /// When rows were rewritten, `VACUUM` and a truncating checkpoint leave no old value in free pages or the WAL
    /// (`secure_delete` is on for every connection). Rows are sealed anew only once no refresh holds a lease on
    /// one (`ResealWait`). Without secrets, a store whose rows are sealed is refused
    /// (`.wrongKey`); one that never was stays unsealed, and the log says so.
    static func prepare(
        _ secrets: StoreSecrets?, application: String, _ connection: SQLiteConnection, path: String, logger: Logger
    ) throws(StoreError) -> TokenSealer? {
        let action = "could not set up the sealing of \(path)"
        guard let secrets else {
            let stored = try fingerprint(of: application, connection, action)
            try SealingRule.withoutSecrets(
                stored: stored.map { ($0.fingerprint, $0.source) }, place: path, application: application,
                logger: logger)
            return nil
        }
        var wait = ResealWait(place: path, logger: logger)
        var rewritten = 0
        var scrubPending = false
        var sealer: TokenSealer
        sealing: while true {
            try TokenRows.sqlite(action) { () throws(SQLiteError) in try connection.execute("BEGIN IMMEDIATE") }
            do throws(StoreError) {
                let (storeID, salt) = try identity(connection, action)
                sealer = try TokenSealer(
                    secret: secrets.current, storeID: storeID, salt: salt, application: application)
                let previous = try secrets.previous.map { secret throws(StoreError) in
                    try TokenSealer(secret: secret, storeID: storeID, salt: salt, application: application)
                }
                let stored = try fingerprint(of: application, connection, action)
                let rule = try SealingRule.decide(
                    stored: stored.map { ($0.fingerprint, $0.source) }, current: sealer, previous: previous,
                    place: path, application: application)
                guard case .reseal(let source) = rule else {
                    try TokenRows.sqlite(action) { () throws(SQLiteError) in try connection.execute("COMMIT") }
                    scrubPending = stored?.scrubbed == false
                    break sealing
                }
                if let held = try leasesHeld(application, connection, action) {
                    try TokenRows.sqlite(action) { () throws(SQLiteError) in try connection.execute("ROLLBACK") }
                    try wait.pause(leases: held.count, until: held.until)
                    continue
                }
                rewritten = try reseal(application, from: source, to: sealer, connection, action)
                try record(sealer, application, scrubbed: rewritten == 0, connection, action)
                scrubPending = rewritten > 0
                try TokenRows.sqlite(action) { () throws(SQLiteError) in try connection.execute("COMMIT") }
                break sealing
            } catch {
                if connection.isInTransaction { try? connection.execute("ROLLBACK") }
                throw error
            }
        }
        connection.sealer = sealer
        if scrubPending, scrub(connection, path: path, logger: logger) {
            try? TokenRows.sqlite(action) { () throws(SQLiteError) in
                let statement = try connection.prepared("UPDATE sealing_keys SET scrubbed = 1 WHERE application = ?1")
                defer { statement.reset() }
                statement.bind(1, application)
                try statement.run()
            }
        }
        if rewritten > 0 {
            logger.notice(
                "token store \(path): sealed \(rewritten) row\(rewritten == 1 ? "" : "s") of application \(application) with a key from its \(sealer.source)"
            )
        }
        return sealer
    }

    /// Records `sealer`'s fingerprint as the application's, inside the caller's write transaction; `scrubbed`
    /// false while the values the rows replaced may still sit in the file's free space or the WAL.
    private static func record(
        _ sealer: TokenSealer, _ application: String, scrubbed: Bool, _ connection: SQLiteConnection,
        _ action: String
    ) throws(StoreError) {
        try TokenRows.sqlite(action) { () throws(SQLiteError) in
            let statement = try connection.prepared(
                """
                INSERT INTO sealing_keys (application, fingerprint, source, sealed_at, scrubbed)
                VALUES (?1, ?2, ?3, ?4, ?5)
                ON CONFLICT (application) DO UPDATE SET fingerprint = excluded.fingerprint,
                    source = excluded.source, sealed_at = excluded.sealed_at, scrubbed = excluded.scrubbed
                """)
            defer { statement.reset() }
            statement.bind(1, application)
            statement.bind(2, sealer.fingerprint)
            statement.bind(3, sealer.source)
            statement.bind(4, Date().timeIntervalSince1970)
            statement.bind(5, Int64(scrubbed ? 1 : 0))
            try statement.run()
        }
    }

    /// Leases of the application's rows not yet expired (refreshes in flight, perhaps by agents on the old secret):
    /// how many, and when the last one ends.
    private static func leasesHeld(
        _ application: String, _ connection: SQLiteConnection, _ action: String
    ) throws(StoreError) -> (count: Int, until: Date)? {
        try TokenRows.sqlite(action) { () throws(SQLiteError) -> (count: Int, until: Date)? in
            let statement = try connection.prepared(
                """
                SELECT count(*), max(lease_expires_at) FROM tokens
                WHERE application = ?1 AND lease_owner IS NOT NULL AND lease_expires_at > ?2
                """)
            defer { statement.reset() }
            statement.bind(1, application)
            statement.bind(2, Date().timeIntervalSince1970)
            guard try statement.step(), let until = statement.optionalDouble(1) else { return nil }
            return (Int(statement.int64(0)), Date(timeIntervalSince1970: until))
        }
    }

    /// Rewrites free pages and truncates the WAL so no value replaced by its sealed form survives there; true when
    /// both happened. Another agent reading at this moment can keep the WAL from being truncated: the log says so,
    /// and the next agent to open the store scrubs again.
    static func scrub(_ connection: SQLiteConnection, path: String, logger: Logger) -> Bool {
        do {
            try connection.execute("VACUUM")
            let result = try connection.firstColumn("PRAGMA wal_checkpoint(TRUNCATE)")
            if result.first != "0" {
                logger.warning(
                    "token store \(path): another process kept the WAL from being truncated; old values stay in it until an agent opens the store again"
                )
                return false
            }
            return true
        } catch {
            logger.warning("token store \(path): could not scrub free pages and the WAL (\(error))")
            return false
        }
    }

    private static func identity(
        _ connection: SQLiteConnection, _ action: String
    ) throws(StoreError) -> (String, [UInt8]) {
        try TokenRows.sqlite(action) { () throws(SQLiteError) in
            let statement = try connection.prepared("SELECT store_id, sealing_salt FROM store_meta WHERE id = 1")
            defer { statement.reset() }
            guard try statement.step(), !statement.isNull(0), statement.isBlob(1) else {
                throw SQLiteError(code: 11 /* SQLITE_CORRUPT */, message: "the store has no id or salt")
            }
            return (statement.text(0), statement.blob(1))
        }
    }

    private static func fingerprint(
        of application: String, _ connection: SQLiteConnection, _ action: String
    ) throws(StoreError) -> (fingerprint: String, source: String, scrubbed: Bool)? {
        try TokenRows.sqlite(action) { () throws(SQLiteError) in
            let statement = try connection.prepared(
                "SELECT fingerprint, source, scrubbed FROM sealing_keys WHERE application = ?1")
            defer { statement.reset() }
            statement.bind(1, application)
            return try statement.step() ? (statement.text(0), statement.text(1), statement.int64(2) != 0) : nil
        }
    }

    /// Rewrites every row of `application` sealed under `target`: rows read in plain text (`from` nil) or opened
    /// with `from`. Keeps generations, leases and everything else.
    private static func reseal(
        _ application: String, from source: TokenSealer?, to target: TokenSealer, _ connection: SQLiteConnection,
        _ action: String
    ) throws(StoreError) -> Int {
        connection.sealer = source
        defer { connection.sealer = nil }
        let (rows, unopenable) = try TokenRows.list(application, connection)
        if let key = unopenable.first {
            throw StoreError(
                .sealing,
                "could not re-seal key '\(key)' of \(application): its values do not open; nothing was changed")
        }
        connection.sealer = target
        for row in rows { try TokenRows.rewriteTokens(row, application, connection) }
        return rows.count
    }
}
