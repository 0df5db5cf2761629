import Foundation

/// The SQL of the change log: the `changes` table (one row per mutation, `seq` from AUTOINCREMENT so a number
/// is never reused, even after pruning) and `store_meta.change_log_pruned_through` (the newest pruned sequence,
/// to tell a follower it fell behind).
enum ChangeRows {
    private static let insert = """
        INSERT INTO changes (application, key, kind, origin, changed_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING seq
        """
    private static let prune = "DELETE FROM changes WHERE seq <= ?1"
    private static let notePruned =
        "UPDATE store_meta SET change_log_pruned_through = max(change_log_pruned_through, ?1) WHERE id = 1"
    private static let prunedThrough = "SELECT change_log_pruned_through FROM store_meta WHERE id = 1"
    private static let latest = """
        SELECT max(coalesce((SELECT max(seq) FROM changes), 0),
                   (SELECT change_log_pruned_through FROM store_meta WHERE id = 1))
        """
    private static let after = """
        SELECT seq, key, kind, origin FROM changes WHERE application = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3
        """

    private static let keyChangedAfter =
        "SELECT 1 FROM changes WHERE application = ?1 AND seq > ?3 AND key = ?2 LIMIT 1"

    static var statements: [String] { [insert, prune, notePruned, prunedThrough, latest, after, keyChangedAfter] }

    /// Appends a change (inside the caller's write transaction) and prunes the entries beyond `capacity`.
    static func append(
        _ key: String, _ application: String, kind: ChangeKind, origin: String, capacity: Int,
        _ connection: SQLiteConnection
    ) throws(StoreError) {
        try TokenRows.sqlite("could not log the change of key '\(key)'") { () throws(SQLiteError) in
            let statement = try connection.prepared(insert)
            defer { statement.reset() }
            statement.bind(1, application)
            statement.bind(2, key)
            statement.bind(3, kind.rawValue)
            statement.bind(4, origin)
            statement.bind(5, Date().timeIntervalSince1970)
            guard try statement.step() else { throw SQLiteError(code: 1, message: "the insert returned no row") }
            let sequence = statement.int64(0)
            while try statement.step() {}
            let oldest = sequence - Int64(capacity)
            guard oldest > 0 else { return }
            let pruning = try connection.prepared(prune)
            defer { pruning.reset() }
            pruning.bind(1, oldest)
            try pruning.run()
            guard connection.changes > 0 else { return }
            let noting = try connection.prepared(notePruned)
            defer { noting.reset() }
            noting.bind(1, oldest)
            try noting.run()
        }
    }

    /// Whether `key` of `application` has a change after `sequence`; true also when entries after `sequence` were
    /// pruned (nobody can tell any more). Reads at most the application's entries after `sequence`.
    static func keyChanged(
        _ key: String, _ application: String, after sequence: Int64, _ connection: SQLiteConnection
    ) throws(StoreError) -> Bool {
        try TokenRows.sqlite("could not read the change log of key '\(key)'") { () throws(SQLiteError) -> Bool in
            let pruned = try connection.prepared(prunedThrough)
            defer { pruned.reset() }
            if try pruned.step(), sequence < pruned.int64(0) { return true }
            let statement = try connection.prepared(keyChangedAfter)
            defer { statement.reset() }
            statement.bind(1, application)
            statement.bind(2, key)
            statement.bind(3, sequence)
            return try statement.step()
        }
    }

    static func latest(_ connection: SQLiteConnection) throws(StoreError) -> Int64 {
        try TokenRows.sqlite("could not read the change log") { () throws(SQLiteError) in
            let statement = try connection.prepared(latest)
            defer { statement.reset() }
            return try statement.step() ? statement.int64(0) : 0
        }
    }

    static func after(
        _ sequence: Int64, limit: Int, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) -> ChangeBatch {
        try TokenRows.sqlite("could not read the change log") { () throws(SQLiteError) -> ChangeBatch in
            let pruned = try connection.prepared(prunedThrough)
            let through = try pruned.step() ? pruned.int64(0) : 0
            pruned.reset()
            if sequence < through {
                let newest = try connection.prepared(latest)
                defer { newest.reset() }
                return .fellBehind(latest: try newest.step() ? newest.int64(0) : through)
            }
            let statement = try connection.prepared(after)
            defer { statement.reset() }
            statement.bind(1, application)
            statement.bind(2, sequence)
            statement.bind(3, Int64(limit))
            var changes: [StoreChange] = []
            while try statement.step() {
                // An unknown kind (written by a newer agent) is passed on as the most cautious one.
                let kind = ChangeKind(rawValue: statement.text(2)) ?? .stored
                changes.append(
                    StoreChange(
                        sequence: statement.int64(0), key: statement.text(1), kind: kind, origin: statement.text(3)))
            }
            return .changes(changes)
        }
    }
}
