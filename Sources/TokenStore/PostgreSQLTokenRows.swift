import Foundation

/// The SQL of the `tokens` table on PostgreSQL and the mapping between its rows and `TokenRow` (as `TokenRows`
/// does for SQLite). Parameters and results are text; times are Unix seconds.
enum PostgreSQLTokenRows {
    static let columns =
        "key, access_token, refresh_token, expires_at, refresh_expires_at, scope, generation, last_refreshed_at, needs_reauth, lease_owner, lease_expires_at, connect_options"

    static let selectOne = "SELECT \(columns) FROM tokens WHERE application = $1 AND key = $2"
    static let lockOne =
        "SELECT \(columns), extract(epoch from now())::float8 FROM tokens WHERE application = $1 AND key = $2 FOR UPDATE"
    static let existsElsewhere = "SELECT 1 FROM tokens WHERE key = $2 AND application <> $1 LIMIT 1"
    static let selectAll = "SELECT \(columns) FROM tokens WHERE application = $1 ORDER BY key"
    static let countAll = "SELECT count(*) FROM tokens WHERE application = $1"
    /// New tokens: generation + 1, needs_reauth and the lease cleared; the Connect options as given, or kept when
    /// `$11` is true (a refresh); RETURNING gives the row as written.
    static let upsert = """
        INSERT INTO tokens AS t (application, key, access_token, refresh_token, expires_at, refresh_expires_at, scope,
                                 generation, last_refreshed_at, needs_reauth, lease_owner, lease_expires_at,
                                 updated_at, connect_options)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, false, NULL, NULL, $9, $10)
        ON CONFLICT (application, key) DO UPDATE SET
            access_token = excluded.access_token, refresh_token = excluded.refresh_token,
            expires_at = excluded.expires_at, refresh_expires_at = excluded.refresh_expires_at,
            scope = excluded.scope, generation = t.generation + 1,
            last_refreshed_at = excluded.last_refreshed_at, needs_reauth = false,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = excluded.updated_at,
            connect_options = CASE WHEN $11::boolean THEN t.connect_options ELSE excluded.connect_options END
        RETURNING \(columns)
        """
    static let insertAsGiven = """
        INSERT INTO tokens AS t (application, key, access_token, refresh_token, expires_at, refresh_expires_at, scope,
                                 generation, last_refreshed_at, needs_reauth, lease_owner, lease_expires_at,
                                 updated_at, connect_options)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $12)
        ON CONFLICT (application, key) DO UPDATE SET
            access_token = excluded.access_token, refresh_token = excluded.refresh_token,
            expires_at = excluded.expires_at, refresh_expires_at = excluded.refresh_expires_at,
            scope = excluded.scope, generation = excluded.generation, last_refreshed_at = excluded.last_refreshed_at,
            needs_reauth = excluded.needs_reauth, lease_owner = NULL, lease_expires_at = NULL,
            updated_at = excluded.updated_at, connect_options = excluded.connect_options
        """
    static let deleteOne = "DELETE FROM tokens WHERE application = $1 AND key = $2"
    static let clearLease = """
        UPDATE tokens SET lease_owner = NULL, lease_expires_at = NULL
        WHERE application = $1 AND key = $2 AND lease_owner = $3
        """
    static let markNeedsReauth = """
        UPDATE tokens SET needs_reauth = true, updated_at = $4
        WHERE application = $1 AND key = $2 AND refresh_token = $3
        """
    static let refreshExpiringBefore = """
        SELECT key FROM tokens WHERE application = $1 AND refresh_expires_at < $2 AND NOT needs_reauth
        ORDER BY refresh_expires_at, key LIMIT $3
        """

    /// The parameters of `upsert` for `token`.
    static func upsertParameters(
        _ token: StoredToken, _ application: String, lastRefreshedAt: Date?, keepConnectOptions: Bool
    ) -> [String?] {
        [
            application, token.key, token.accessToken, token.refreshToken, seconds(token.expiresAt),
            token.refreshExpiresAt.map(seconds), token.scope, lastRefreshedAt.map(seconds), seconds(Date()),
            token.connectOptions, keepConnectOptions ? "true" : "false",
        ]
    }

    static func insertAsGivenParameters(_ token: StoredToken, _ application: String) -> [String?] {
        [
            application, token.key, token.accessToken, token.refreshToken, seconds(token.expiresAt),
            token.refreshExpiresAt.map(seconds), token.scope, "\(token.generation)",
            token.lastRefreshedAt.map(seconds), token.needsReauth ? "true" : "false", seconds(Date()),
            token.connectOptions,
        ]
    }

    /// A row of `columns` (and anything after them).
    static func row(_ values: [String?]) -> TokenRow {
        TokenRow(
            token: StoredToken(
                key: values[0] ?? "", accessToken: values[1] ?? "", refreshToken: values[2] ?? "",
                expiresAt: date(values[3]) ?? Date(timeIntervalSince1970: 0), refreshExpiresAt: date(values[4]),
                scope: values[5], generation: Int64(values[6] ?? "") ?? 0, lastRefreshedAt: date(values[7]),
                needsReauth: values[8] == "t", connectOptions: values[11]),
            leaseOwner: values[9], leaseExpiresAt: date(values[10]))
    }

    /// A time as the text of exact Unix seconds (Swift prints the shortest text that reads back the same double).
    static func seconds(_ date: Date) -> String { "\(date.timeIntervalSince1970)" }

    static func date(_ text: String?) -> Date? { text.flatMap(Double.init).map(Date.init(timeIntervalSince1970:)) }
}
