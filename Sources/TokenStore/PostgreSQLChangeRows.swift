/// The change log on PostgreSQL. Each mutating transaction takes its sequence number from
/// `store_meta.last_sequence`, whose row lock it then holds until it commits: sequence order is commit order, so
/// a follower that read up to a number never misses a change committed later under a lower one (a `bigserial`
/// would allow that). The commit also notifies the store's channel, whose listeners read the log then.
enum PostgreSQLChangeRows {
    /// Takes the next sequence number, logs the change, prunes the entries beyond the capacity `$6` (noting the
    /// newest pruned number, to tell a follower it fell behind) and notifies `$5`, in one statement: the sequence
    /// row stays locked only for this statement and the commit.
    private static let append = """
        WITH next AS (UPDATE store_meta SET last_sequence = last_sequence + 1,
                          change_log_pruned_through = greatest(change_log_pruned_through, last_sequence + 1 - $6)
                      WHERE id = 1 RETURNING last_sequence),
             logged AS (INSERT INTO changes (seq, application, key, kind, origin, changed_at)
                        SELECT last_sequence, $1, $2, $3, $4, extract(epoch from clock_timestamp()) FROM next
                        RETURNING seq),
             pruned AS (DELETE FROM changes WHERE seq <= (SELECT last_sequence FROM next) - $6)
        SELECT seq, pg_notify($5, seq::text) FROM logged
        """
    /// Takes the sequence row's lock without using a number (a fenced save checks the log under it).
    static let lock = "SELECT last_sequence FROM store_meta WHERE id = 1 FOR UPDATE"
    static let latest = "SELECT last_sequence FROM store_meta WHERE id = 1"
    private static let keyChanged = """
        SELECT change_log_pruned_through > $3
               OR EXISTS (SELECT 1 FROM changes WHERE application = $1 AND key = $2 AND seq > $3)
        FROM store_meta WHERE id = 1
        """
    /// The pruning mark, the newest sequence and the batch, from one statement (one snapshot).
    private static let after = """
        SELECT m.change_log_pruned_through, m.last_sequence, c.seq, c.key, c.kind, c.origin
        FROM store_meta m LEFT JOIN LATERAL (
            SELECT seq, key, kind, origin FROM changes WHERE application = $1 AND seq > $2 ORDER BY seq LIMIT $3
        ) c ON true
        WHERE m.id = 1 ORDER BY c.seq
        """

    /// Logs a change in the caller's transaction as its last statement, sent with its `COMMIT`
    /// (`PostgreSQLConnection.commit`): the sequence row is locked for that one round trip only. Notifies
    /// `channel` (delivered at commit) and prunes the entries beyond `capacity`.
    static func append(
        _ key: String, _ application: String, kind: ChangeKind, origin: String, capacity: Int, channel: String,
        _ connection: PostgreSQLConnection
    ) {
        connection.statementBeforeCommit = (append, [application, key, kind.rawValue, origin, channel, "\(capacity)"])
    }

    /// Whether `key` of `application` has a change after `sequence` (or entries after it were pruned).
    static func keyChanged(
        _ key: String, _ application: String, after sequence: Int64, _ connection: PostgreSQLConnection
    ) throws(PostgreSQLFailure) -> Bool {
        try connection.execute(keyChanged, [application, key, "\(sequence)"]).value != "f"
    }

    static func latest(_ connection: PostgreSQLConnection) throws(PostgreSQLFailure) -> Int64 {
        Int64(try connection.execute(latest).value ?? "") ?? 0
    }

    /// The newest sequence and the application's batch after `sequence`.
    static func after(
        _ sequence: Int64, limit: Int, _ application: String, _ connection: PostgreSQLConnection
    ) throws(PostgreSQLFailure) -> (latest: Int64, batch: ChangeBatch) {
        let rows = try connection.execute(after, [application, "\(sequence)", "\(max(limit, 0))"]).rows
        let prunedThrough = Int64(rows.first?[0] ?? "") ?? 0
        let latest = Int64(rows.first?[1] ?? "") ?? 0
        if sequence < prunedThrough { return (latest, .fellBehind(latest: max(latest, prunedThrough))) }
        let changes = rows.compactMap { row -> StoreChange? in
            guard let seq = row[2].flatMap({ Int64($0) }) else { return nil }
            // An unknown kind (written by a newer agent) is passed on as the most cautious one.
            return StoreChange(
                sequence: seq, key: row[3] ?? "", kind: row[4].flatMap(ChangeKind.init(rawValue:)) ?? .stored,
                origin: row[5] ?? "")
        }
        return (latest, .changes(changes))
    }
}
