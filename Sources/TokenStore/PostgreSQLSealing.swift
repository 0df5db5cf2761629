import AgentSupport
import Foundation
import Sealing
import WireFormats

/// A PostgreSQL store's sealing, set up for one application when the store opens, with the rules of
/// `SQLiteSealing.prepare`: the fingerprint of the current secret is kept as it is; no fingerprint yet seals every
/// plaintext row (an upgrade); the previous secret's re-seals every row (a rotation); any other is `.wrongKey`,
/// with nothing written. Rewrites run in one transaction holding the `tokens` table in `EXCLUSIVE` mode, so no
/// agent writes a row meanwhile, once no refresh holds a lease (`ResealWait`), and every later write checks the
/// fingerprint under that table's lock (`PostgreSQLTokenRows.lockForWrite`).
enum PostgreSQLSealing {
    static func prepare(
        _ secrets: StoreSecrets?, application: String, _ connection: PostgreSQLConnection, displayName: String,
        logger: Logger
    ) throws(StoreError) -> TokenSealer? {
        let action = "could not set up the sealing of PostgreSQL \(displayName)"
        do throws(PostgreSQLFailure) {
            let place = "PostgreSQL \(displayName)"
            guard let secrets else {
                let stored = try fingerprint(of: application, connection)
                do throws(StoreError) {
                    try SealingRule.withoutSecrets(
                        stored: stored, place: place, application: application, logger: logger)
                } catch { throw PostgreSQLFailure(error) }
                return nil
            }
            let (storeID, salt) = try identity(connection)
            let sealer = try sealerFor(secrets.current, storeID, salt, application)
            if try fingerprint(of: application, connection)?.fingerprint == sealer.fingerprint { return sealer }
            let previous = try secrets.previous.map { secret throws(PostgreSQLFailure) in
                try sealerFor(secret, storeID, salt, application)
            }
            var wait = ResealWait(place: place, logger: logger)
            var rewritten = 0
            sealing: while true {
                try connection.execute("BEGIN")
                do throws(PostgreSQLFailure) {
                    try connection.execute("LOCK TABLE tokens IN EXCLUSIVE MODE")
                    let stored = try fingerprint(of: application, connection)
                    let rule: SealingRule
                    do throws(StoreError) {
                        rule = try SealingRule.decide(
                            stored: stored, current: sealer, previous: previous, place: place, application: application)
                    } catch { throw PostgreSQLFailure(error) }
                    guard case .reseal(let source) = rule else {  // another agent sealed it meanwhile
                        try connection.execute("COMMIT")
                        break sealing
                    }
                    let held = try connection.execute(
                        """
                        SELECT count(*), max(lease_expires_at) - extract(epoch from now())::float8 FROM tokens
                        WHERE application = $1 AND lease_owner IS NOT NULL
                          AND lease_expires_at > extract(epoch from now())::float8
                        """, [application]
                    ).rows.first
                    if let count = held?[0].flatMap({ Int($0) }), count > 0 {
                        try connection.execute("ROLLBACK")
                        let remaining = held?[1].flatMap(Double.init) ?? 0
                        do { try wait.pause(leases: count, until: Date().addingTimeInterval(remaining)) } catch {
                            throw PostgreSQLFailure(error)
                        }
                        continue
                    }
                    rewritten = try reseal(application, from: source, to: sealer, connection)
                    try connection.execute(
                        """
                        INSERT INTO sealing_keys (application, fingerprint, source, sealed_at) VALUES ($1, $2, $3, $4)
                        ON CONFLICT (application) DO UPDATE SET fingerprint = excluded.fingerprint,
                            source = excluded.source, sealed_at = excluded.sealed_at
                        """,
                        [application, sealer.fingerprint, sealer.source, PostgreSQLTokenRows.seconds(Date())])
                    try connection.execute("COMMIT")
                    break sealing
                } catch {
                    if !error.connectionLost { _ = try? connection.execute("ROLLBACK") }
                    throw error
                }
            }
            if rewritten > 0 {
                scrub(connection, displayName: displayName, logger: logger)
                logger.notice(
                    "token store PostgreSQL \(displayName): sealed \(rewritten) row\(rewritten == 1 ? "" : "s") of application \(application) with a key from its \(sealer.source)"
                )
            }
            return sealer
        } catch {
            throw error.storeError(action)
        }
    }

    /// `VACUUM FULL` writes the table anew, so the replaced values' dead rows leave the table's files (a dump
    /// never shows them). It needs the table's owner: otherwise the log says so, and autovacuum frees them later.
    private static func scrub(_ connection: PostgreSQLConnection, displayName: String, logger: Logger) {
        do { try connection.execute("VACUUM FULL tokens") } catch {
            logger.warning(
                "token store PostgreSQL \(displayName): could not VACUUM FULL the tokens table (\(error.message)); the replaced values stay in its dead rows until autovacuum removes them"
            )
        }
    }

    private static func sealerFor(
        _ secret: SealingSecret, _ storeID: String, _ salt: [UInt8], _ application: String
    ) throws(PostgreSQLFailure) -> TokenSealer {
        do { return try TokenSealer(secret: secret, storeID: storeID, salt: salt, application: application) } catch {
            throw PostgreSQLFailure(error)
        }
    }

    private static func identity(_ connection: PostgreSQLConnection) throws(PostgreSQLFailure) -> (String, [UInt8]) {
        let found = try connection.execute("SELECT store_id, encode(sealing_salt, 'hex') FROM store_meta WHERE id = 1")
        guard let row = found.rows.first, let storeID = row[0], let hex = row[1], let salt = Hexadecimal.bytes(hex),
            !salt.isEmpty
        else {
            throw PostgreSQLFailure(message: "the store has no id or salt", connectionLost: false)
        }
        return (storeID, salt)
    }

    private static func fingerprint(
        of application: String, _ connection: PostgreSQLConnection
    ) throws(PostgreSQLFailure) -> (fingerprint: String, source: String)? {
        let found = try connection.execute(
            "SELECT fingerprint, source FROM sealing_keys WHERE application = $1", [application])
        return found.rows.first.map { ($0[0] ?? "", $0[1] ?? "") }
    }

    /// Rewrites every row of `application` sealed under `target`: rows read in plain text (`from` nil) or opened
    /// with `from`, at their generation; nothing is changed when one does not open.
    private static func reseal(
        _ application: String, from source: TokenSealer?, to target: TokenSealer, _ connection: PostgreSQLConnection
    ) throws(PostgreSQLFailure) -> Int {
        let rows = try connection.execute(PostgreSQLTokenRows.selectAll, [application]).rows
        for values in rows {
            let token: StoredToken
            do { token = try PostgreSQLTokenRows.row(values, source).token } catch {
                throw PostgreSQLFailure(
                    StoreError(
                        .sealing,
                        "could not re-seal key '\(values[0] ?? "")' of \(application): its values do not open; nothing was changed"
                    ))
            }
            let (access, refresh) = try PostgreSQLTokenRows.stored(token, generation: token.generation, target)
            try connection.execute(
                PostgreSQLTokenRows.rewriteTokens, [application, token.key, access, refresh, "\(token.generation)"])
        }
        return rows.count
    }
}
