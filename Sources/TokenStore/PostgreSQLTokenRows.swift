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
    /// Locks the key's row, if there is one, and reads its generation with the application's key fingerprint, in
    /// one round trip before every write of new tokens: the values are sealed for the generation they are written
    /// at, and never under a key another agent has rotated away from (a rotation locks the table, see
    /// `PostgreSQLSealing`, so the fingerprint cannot change between this read and the commit).
    static let lockForWrite = """
        SELECT (SELECT generation FROM tokens WHERE application = $1 AND key = $2 FOR UPDATE),
               (SELECT fingerprint FROM sealing_keys WHERE application = $1)
        """
    /// New tokens at generation `$12` (the row's + 1), needs_reauth and the lease cleared; the Connect options as
    /// given, or kept when `$11` is true (a refresh); RETURNING gives the row as written, and nothing when another
    /// agent inserted the key since `lockForWrite` found no row (the write is then tried again).
    static let upsert = """
        INSERT INTO tokens AS t (application, key, access_token, refresh_token, expires_at, refresh_expires_at, scope,
                                 generation, last_refreshed_at, needs_reauth, lease_owner, lease_expires_at,
                                 updated_at, connect_options)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $12, $8, false, NULL, NULL, $9, $10)
        ON CONFLICT (application, key) DO UPDATE SET
            access_token = excluded.access_token, refresh_token = excluded.refresh_token,
            expires_at = excluded.expires_at, refresh_expires_at = excluded.refresh_expires_at,
            scope = excluded.scope, generation = excluded.generation,
            last_refreshed_at = excluded.last_refreshed_at, needs_reauth = false,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = excluded.updated_at,
            connect_options = CASE WHEN $11::boolean THEN t.connect_options ELSE excluded.connect_options END
        WHERE t.generation = $12 - 1
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
    /// Marks the row read at generation `$3` (whose refresh token the caller compared opened: sealed values
    /// differ every time they are written).
    static let markNeedsReauth = """
        UPDATE tokens SET needs_reauth = true, updated_at = $4
        WHERE application = $1 AND key = $2 AND generation = $3
        """
    /// The token columns rewritten at the same generation (sealing a plaintext store, or a rotation).
    static let rewriteTokens = """
        UPDATE tokens SET access_token = $3, refresh_token = $4 WHERE application = $1 AND key = $2 AND generation = $5
        """
    static let refreshExpiringBefore = """
        SELECT key FROM tokens WHERE application = $1 AND refresh_expires_at < $2 AND NOT needs_reauth
        ORDER BY refresh_expires_at, key LIMIT $3
        """

    /// The parameters of `upsert` for `token` written at `generation`.
    static func upsertParameters(
        _ token: StoredToken, _ application: String, generation: Int64, lastRefreshedAt: Date?,
        keepConnectOptions: Bool, _ sealer: TokenSealer?
    ) throws(PostgreSQLFailure) -> [String?] {
        let (access, refresh) = try stored(token, generation: generation, sealer)
        return [
            application, token.key, access, refresh, seconds(token.expiresAt), token.refreshExpiresAt.map(seconds),
            token.scope, lastRefreshedAt.map(seconds), seconds(Date()), token.connectOptions,
            keepConnectOptions ? "true" : "false", "\(generation)",
        ]
    }

    static func insertAsGivenParameters(
        _ token: StoredToken, _ application: String, _ sealer: TokenSealer?
    ) throws(PostgreSQLFailure) -> [String?] {
        let (access, refresh) = try stored(token, generation: token.generation, sealer)
        return [
            application, token.key, access, refresh, seconds(token.expiresAt), token.refreshExpiresAt.map(seconds),
            token.scope, "\(token.generation)", token.lastRefreshedAt.map(seconds),
            token.needsReauth ? "true" : "false",
            seconds(Date()), token.connectOptions,
        ]
    }

    /// The token columns as stored for `generation`: base64 of the sealed values, or the values themselves in a
    /// store without a sealer.
    static func stored(
        _ token: StoredToken, generation: Int64, _ sealer: TokenSealer?
    ) throws(PostgreSQLFailure) -> (String, String) {
        guard let sealer else { return (token.accessToken, token.refreshToken) }
        do {
            let access = try sealer.seal(
                token.accessToken, key: token.key, column: .accessToken, generation: generation)
            let refresh = try sealer.seal(
                token.refreshToken, key: token.key, column: .refreshToken, generation: generation)
            return (Data(access).base64EncodedString(), Data(refresh).base64EncodedString())
        } catch {
            throw PostgreSQLFailure(error)
        }
    }

    /// A row of `columns` (and anything after them), its token columns opened with `sealer`.
    static func row(_ values: [String?], _ sealer: TokenSealer?) throws(PostgreSQLFailure) -> TokenRow {
        let (key, generation) = (values[0] ?? "", Int64(values[6] ?? "") ?? 0)
        func opened(_ text: String?, _ column: TokenSealer.Column) throws(PostgreSQLFailure) -> String {
            guard let sealer else { return text ?? "" }
            guard let text, let sealed = Data(base64Encoded: text) else {
                throw PostgreSQLFailure(
                    StoreError(
                        .sealing,
                        "the \(column.rawValue) of key '\(key)' is not sealed in a sealed store; the row is left as it is"
                    ))
            }
            do { return try sealer.open(Array(sealed), key: key, column: column, generation: generation) } catch {
                throw PostgreSQLFailure(error)
            }
        }
        return TokenRow(
            token: StoredToken(
                key: key, accessToken: try opened(values[1], .accessToken),
                refreshToken: try opened(values[2], .refreshToken),
                expiresAt: date(values[3]) ?? Date(timeIntervalSince1970: 0), refreshExpiresAt: date(values[4]),
                scope: values[5], generation: generation, lastRefreshedAt: date(values[7]),
                needsReauth: values[8] == "t", connectOptions: values[11]),
            leaseOwner: values[9], leaseExpiresAt: date(values[10]))
    }

    /// A time as the text of exact Unix seconds (Swift prints the shortest text that reads back the same double).
    static func seconds(_ date: Date) -> String { "\(date.timeIntervalSince1970)" }

    static func date(_ text: String?) -> Date? { text.flatMap(Double.init).map(Date.init(timeIntervalSince1970:)) }
}
