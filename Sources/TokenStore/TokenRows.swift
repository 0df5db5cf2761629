import Foundation

/// The SQL for the `tokens` table and the mapping between its rows and `StoredToken`. Every statement names the
/// application (`?1`): a store only ever touches its own application's rows.
/// Every function runs on the store's queue and turns SQLite failures into `StoreError`s naming the key.
/// Token values are sealed on the way in and opened on the way out with the connection's `sealer`; a generation is
/// therefore decided before the row is written, since the sealed values are bound to it.
enum TokenRows {
    private static let columns =
        "key, access_token, refresh_token, expires_at, refresh_expires_at, scope, generation, last_refreshed_at, needs_reauth, lease_owner, lease_expires_at, connect_options"

    private static let selectOne = "SELECT \(columns) FROM tokens WHERE application = ?1 AND key = ?2"
    private static let existsElsewhere = "SELECT 1 FROM tokens WHERE key = ?2 AND application <> ?1 LIMIT 1"
    private static let selectAll = "SELECT \(columns) FROM tokens WHERE application = ?1 ORDER BY key"
    private static let countAll = "SELECT count(*) FROM tokens WHERE application = ?1"
    private static let selectGeneration = "SELECT generation FROM tokens WHERE application = ?1 AND key = ?2"
    private static let selectFingerprint = "SELECT fingerprint FROM sealing_keys WHERE application = ?1"
    /// New tokens with generation `?12` (the row's + 1), needs_reauth and the lease cleared; the Connect options as
    /// given, or kept when `?11` is set (a refresh); RETURNING gives the row as written.
    private static let upsert = """
        INSERT INTO tokens (application, key, access_token, refresh_token, expires_at, refresh_expires_at, scope,
                            generation, last_refreshed_at, needs_reauth, lease_owner, lease_expires_at, updated_at,
                            connect_options)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?12, ?8, 0, NULL, NULL, ?9, ?10)
        ON CONFLICT (application, key) DO UPDATE SET
            access_token = excluded.access_token, refresh_token = excluded.refresh_token,
            expires_at = excluded.expires_at, refresh_expires_at = excluded.refresh_expires_at,
            scope = excluded.scope, generation = excluded.generation,
            last_refreshed_at = excluded.last_refreshed_at, needs_reauth = 0,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = excluded.updated_at,
            connect_options = CASE WHEN ?11 THEN tokens.connect_options ELSE excluded.connect_options END
        RETURNING \(columns)
        """
    private static let insertAsGiven = """
        INSERT OR REPLACE INTO tokens (application, key, access_token, refresh_token, expires_at, refresh_expires_at,
                                       scope, generation, last_refreshed_at, needs_reauth, lease_owner,
                                       lease_expires_at, updated_at, connect_options)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, NULL, ?11, ?12)
        """
    private static let resealOne =
        "UPDATE tokens SET access_token = ?3, refresh_token = ?4 WHERE application = ?1 AND key = ?2 AND generation = ?5"
    private static let deleteOne = "DELETE FROM tokens WHERE application = ?1 AND key = ?2"
    private static let setLease =
        "UPDATE tokens SET lease_owner = ?3, lease_expires_at = ?4 WHERE application = ?1 AND key = ?2"
    private static let clearLease = """
        UPDATE tokens SET lease_owner = NULL, lease_expires_at = NULL
        WHERE application = ?1 AND key = ?2 AND lease_owner = ?3
        """
    private static let markNeedsReauth = """
        UPDATE tokens SET needs_reauth = 1, updated_at = ?4
        WHERE application = ?1 AND key = ?2 AND generation = ?3
        """
    private static let refreshExpiringBefore = """
        SELECT key FROM tokens WHERE application = ?1 AND refresh_expires_at < ?2 AND needs_reauth = 0
        ORDER BY refresh_expires_at LIMIT ?3
        """

    /// Every statement the store runs on its tables (the change log's and the states' included).
    static var statements: [String] {
        [
            selectOne, existsElsewhere, selectAll, countAll, selectGeneration, selectFingerprint, upsert,
            insertAsGiven, resealOne, deleteOne, setLease, clearLease, markNeedsReauth, refreshExpiringBefore,
        ] + ChangeRows.statements + StateRows.statements
    }

    /// Prepares every statement once at open: a file whose tables lack a column we use fails here,
    /// at open, instead of on the first refresh.
    static func prepareAll(_ connection: SQLiteConnection) throws(SQLiteError) {
        for sql in statements { _ = try connection.prepared(sql) }
    }

    static func load(
        _ key: String, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError)
        -> TokenRow?
    {
        let statement = try sqlite("could not read key '\(key)'") { () throws(SQLiteError) in
            try connection.prepared(selectOne)
        }
        defer { statement.reset() }
        statement.bind(1, application)
        statement.bind(2, key)
        let found = try sqlite("could not read key '\(key)'") { () throws(SQLiteError) in try statement.step() }
        return found ? try row(statement, connection.sealer) : nil
    }

    /// Whether an application other than `application` has a row for `key`.
    static func existsElsewhere(
        _ key: String, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) -> Bool {
        try sqlite("could not read key '\(key)'") { () throws(SQLiteError) in
            let statement = try connection.prepared(existsElsewhere)
            defer { statement.reset() }
            statement.bind(1, application)
            statement.bind(2, key)
            return try statement.step()
        }
    }

    /// The application's rows, and the keys of those whose sealed values do not open (left out of the list: one
    /// damaged row does not hide the others).
    static func list(
        _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) -> (tokens: [StoredToken], unopenable: [String]) {
        let statement: Statement
        do { statement = try connection.prepared(selectAll) } catch {
            throw error.storeError("could not list the stored tokens")
        }
        defer { statement.reset() }
        statement.bind(1, application)
        var (tokens, unopenable) = ([StoredToken](), [String]())
        while try sqlite("could not list the stored tokens", { () throws(SQLiteError) in try statement.step() }) {
            do throws(StoreError) {
                tokens.append(try row(statement, connection.sealer).token)
            } catch  where error.kind == .sealing {
                unopenable.append(statement.text(0))
            }
        }
        return (tokens, unopenable)
    }

    static func count(_ application: String, _ connection: SQLiteConnection) throws(StoreError) -> Int {
        try sqlite("could not count the stored tokens") { () throws(SQLiteError) in
            let statement = try connection.prepared(countAll)
            defer { statement.reset() }
            statement.bind(1, application)
            return try statement.step() ? Int(statement.int64(0)) : 0
        }
    }

    /// Writes new tokens for `token.key` (see `upsert`) and returns the row as stored. `keepConnectOptions`
    /// (a refresh) keeps an existing row's Connect options instead of `token.connectOptions`.
    static func writeNewTokens(
        _ token: StoredToken, _ application: String, lastRefreshedAt: Date?, keepConnectOptions: Bool,
        _ connection: SQLiteConnection
    ) throws(StoreError) -> StoredToken {
        try checkSealingKey(application, connection)
        let generation = try currentGeneration(token.key, application, connection) + 1
        let statement = try sqlite("could not save key '\(token.key)'") { () throws(SQLiteError) in
            try connection.prepared(upsert)
        }
        defer { statement.reset() }
        try bindGrant(statement, application, token, generation: generation, connection.sealer)
        statement.bind(8, lastRefreshedAt?.timeIntervalSince1970)
        statement.bind(9, Date().timeIntervalSince1970)
        statement.bind(10, token.connectOptions)
        statement.bind(11, Int64(keepConnectOptions ? 1 : 0))
        statement.bind(12, generation)
        let written = try sqlite("could not save key '\(token.key)'") { () throws(SQLiteError) -> Bool in
            try statement.step()
        }
        guard written else { throw StoreError(.io, "could not save key '\(token.key)': the upsert returned no row") }
        let row = try row(statement, connection.sealer).token
        try sqlite("could not save key '\(token.key)'") { () throws(SQLiteError) in try statement.run() }
        return row
    }

    /// The row's generation, 0 when there is none.
    private static func currentGeneration(
        _ key: String, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) -> Int64 {
        try sqlite("could not read key '\(key)'") { () throws(SQLiteError) in
            let statement = try connection.prepared(selectGeneration)
            defer { statement.reset() }
            statement.bind(1, application)
            statement.bind(2, key)
            return try statement.step() ? statement.int64(0) : 0
        }
    }

    /// Refuses to write when another agent re-sealed the application's rows under another key since this
    /// connection opened (a rotation): values sealed under the old key would not open for anyone else.
    static func checkSealingKey(_ application: String, _ connection: SQLiteConnection) throws(StoreError) {
        guard let sealer = connection.sealer else { return }
        let stored = try sqlite("could not read the store's sealing key") { () throws(SQLiteError) -> String? in
            let statement = try connection.prepared(selectFingerprint)
            defer { statement.reset() }
            statement.bind(1, application)
            return try statement.step() ? statement.text(0) : nil
        }
        guard stored == sealer.fingerprint else {
            throw StoreError(
                .wrongKey,
                "the store's tokens of application \(application) were re-sealed under another client secret or store key since this agent started; restart it with the new one"
            )
        }
    }

    /// Inserts or replaces `tokens` as given (generation, needs_reauth included), without a lease.
    static func insertAsGiven(
        _ tokens: [StoredToken], _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) {
        let action = "could not bulk insert \(tokens.count) tokens"
        // A bigger page cache for the duration (measured: 1,000,000 rows in 7 s instead of 9 s).
        try sqlite(action) { () throws(SQLiteError) in try connection.execute("PRAGMA cache_size = -131072") }
        defer { try? connection.execute("PRAGMA cache_size = -2000") }  // SQLite's default, 2 MiB
        let statement = try sqlite(action) { () throws(SQLiteError) in try connection.prepared(insertAsGiven) }
        let now = Date().timeIntervalSince1970
        for token in tokens {
            defer { statement.reset() }
            try bindGrant(statement, application, token, generation: token.generation, connection.sealer)
            statement.bind(8, token.generation)
            statement.bind(9, token.lastRefreshedAt?.timeIntervalSince1970)
            statement.bind(10, Int64(token.needsReauth ? 1 : 0))
            statement.bind(11, now)
            statement.bind(12, token.connectOptions)
            try sqlite(action) { () throws(SQLiteError) in try statement.run() }
        }
    }

    /// Writes `token`'s values again, sealed with the connection's current sealer, at the same generation.
    static func rewriteTokens(
        _ token: StoredToken, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) {
        let statement = try sqlite("could not re-seal key '\(token.key)'") { () throws(SQLiteError) in
            try connection.prepared(resealOne)
        }
        defer { statement.reset() }
        try bindGrant(statement, application, token, generation: token.generation, connection.sealer)
        statement.bind(5, token.generation)
        try sqlite("could not re-seal key '\(token.key)'") { () throws(SQLiteError) in try statement.run() }
    }

    static func delete(
        _ key: String, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError)
        -> Bool
    {
        try changesRows("could not delete key '\(key)'", deleteOne, connection) { statement in
            statement.bind(1, application)
            statement.bind(2, key)
        }
    }

    static func setLease(
        _ key: String, _ application: String, owner: String, until: Date, _ connection: SQLiteConnection
    ) throws(StoreError) {
        _ = try changesRows("could not lease key '\(key)'", setLease, connection) { statement in
            statement.bind(1, application)
            statement.bind(2, key)
            statement.bind(3, owner)
            statement.bind(4, until.timeIntervalSince1970)
        }
    }

    static func clearLease(
        _ key: String, _ application: String, owner: String, _ connection: SQLiteConnection
    ) throws(StoreError) -> Bool {
        try changesRows("could not release the lease on key '\(key)'", clearLease, connection) { statement in
            statement.bind(1, application)
            statement.bind(2, key)
            statement.bind(3, owner)
        }
    }

    /// Marks the row only while it still holds `rejectedRefreshToken` (compared opened: sealed values differ
    /// every time), by the generation it was read at, inside the caller's write transaction.
    static func markNeedsReauth(
        _ key: String, _ application: String, rejectedRefreshToken: String, _ connection: SQLiteConnection
    ) throws(StoreError) -> Bool {
        guard let row = try load(key, application, connection), row.token.refreshToken == rejectedRefreshToken else {
            return false
        }
        return try changesRows("could not mark key '\(key)' as needing Connect again", markNeedsReauth, connection) {
            statement in
            statement.bind(1, application)
            statement.bind(2, key)
            statement.bind(3, row.token.generation)
            statement.bind(4, Date().timeIntervalSince1970)
        }
    }

    static func keysWithRefreshExpiringBefore(
        _ date: Date, limit: Int, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) -> [String] {
        try sqlite("could not list keys whose refresh token expires soon") { () throws(SQLiteError) in
            let statement = try connection.prepared(refreshExpiringBefore)
            defer { statement.reset() }
            statement.bind(1, application)
            statement.bind(2, date.timeIntervalSince1970)
            statement.bind(3, Int64(limit))
            var keys: [String] = []
            while try statement.step() { keys.append(statement.text(0)) }
            return keys
        }
    }

    /// Binds `?1`–`?7`, the same in every statement that writes tokens: application, key, the tokens (sealed
    /// for `generation` when there is a sealer), their expiries and the scope.
    private static func bindGrant(
        _ statement: Statement, _ application: String, _ token: StoredToken, generation: Int64,
        _ sealer: TokenSealer?
    ) throws(StoreError) {
        statement.bind(1, application)
        statement.bind(2, token.key)
        for (index, column, value) in [
            (Int32(3), TokenSealer.Column.accessToken, token.accessToken),
            (4, .refreshToken, token.refreshToken),
        ] {
            if let sealer {
                statement.bind(
                    index, blob: try sealer.seal(value, key: token.key, column: column, generation: generation))
            } else {
                statement.bind(index, value)
            }
        }
        statement.bind(5, token.expiresAt.timeIntervalSince1970)
        statement.bind(6, token.refreshExpiresAt?.timeIntervalSince1970)
        statement.bind(7, token.scope)
    }

    /// A token column as stored: opened with `sealer`; plain text only in a store that has no sealer (a value
    /// that is not sealed where values are is refused like a tampered one).
    private static func tokenValue(
        _ statement: Statement, _ index: Int32, _ column: TokenSealer.Column, key: String, generation: Int64,
        _ sealer: TokenSealer?
    ) throws(StoreError) -> String {
        guard let sealer else {
            guard !statement.isBlob(index) else {
                throw StoreError(
                    .wrongKey,
                    "the \(column.rawValue) of key '\(key)' is sealed, but the agent was given no client secret or store key to open it"
                )
            }
            return statement.text(index)
        }
        guard statement.isBlob(index) else {
            throw StoreError(
                .sealing,
                "the \(column.rawValue) of key '\(key)' is not sealed in a sealed store; the row is left as it is")
        }
        return try sealer.open(statement.blob(index), key: key, column: column, generation: generation)
    }

    private static func row(_ statement: Statement, _ sealer: TokenSealer?) throws(StoreError) -> TokenRow {
        let (key, generation) = (statement.text(0), statement.int64(6))
        let token = StoredToken(
            key: key,
            accessToken: try tokenValue(statement, 1, .accessToken, key: key, generation: generation, sealer),
            refreshToken: try tokenValue(statement, 2, .refreshToken, key: key, generation: generation, sealer),
            expiresAt: Date(timeIntervalSince1970: statement.double(3)),
            refreshExpiresAt: statement.optionalDouble(4).map(Date.init(timeIntervalSince1970:)),
            scope: statement.optionalText(5),
            generation: statement.int64(6),
            lastRefreshedAt: statement.optionalDouble(7).map(Date.init(timeIntervalSince1970:)),
            needsReauth: statement.int64(8) != 0,
            connectOptions: statement.optionalText(11))
        return TokenRow(
            token: token,
            leaseOwner: statement.optionalText(9),
            leaseExpiresAt: statement.optionalDouble(10).map(Date.init(timeIntervalSince1970:)))
    }

    /// Runs an UPDATE or DELETE and answers whether it changed a row.
    static func changesRows(
        _ action: String, _ sql: String, _ connection: SQLiteConnection, bind: (Statement) -> Void
    ) throws(StoreError) -> Bool {
        try sqlite(action) { () throws(SQLiteError) in
            let statement = try connection.prepared(sql)
            defer { statement.reset() }
            bind(statement)
            try statement.run()
            return connection.changes > 0
        }
    }

    static func sqlite<T>(
        _ action: @autoclosure () -> String, _ body: () throws(SQLiteError) -> T
    ) throws(StoreError) -> T {
        do {
            return try body()
        } catch {
            throw error.storeError(action())
        }
    }
}
