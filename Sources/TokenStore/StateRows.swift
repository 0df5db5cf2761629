import Foundation

/// The SQL of the `connect_states` table: Connect states of every application, each single use. A consumed
/// state stays (as `consumed_at`) until it would have expired, so a replay is answered `.reused`.
enum StateRows {
    private static let pruneOwnExpired = "DELETE FROM connect_states WHERE application = ?1 AND expires_at <= ?2"
    private static let pruneExpired = "DELETE FROM connect_states WHERE expires_at <= ?1"
    private static let insert = """
        INSERT OR REPLACE INTO connect_states (application, state, key, options, expires_at, consumed_at)
        VALUES (?1, ?2, ?3, ?4, ?5, NULL)
        """
    /// Keeps the application's newest `?2` states.
    private static let bound = """
        DELETE FROM connect_states WHERE application = ?1 AND id <=
            (SELECT id FROM connect_states WHERE application = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)
        """
    private static let consume = """
        UPDATE connect_states SET consumed_at = ?3
        WHERE application = ?1 AND state = ?2 AND consumed_at IS NULL AND expires_at > ?3
        RETURNING key, options, expires_at
        """
    private static let status =
        "SELECT consumed_at IS NOT NULL FROM connect_states WHERE application = ?1 AND state = ?2"

    static var statements: [String] { [pruneOwnExpired, pruneExpired, insert, bound, consume, status] }

    static func issue(
        _ state: ConnectState, capacity: Int, now: Date, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) {
        try TokenRows.sqlite("could not remember a Connect state") { () throws(SQLiteError) in
            let pruning = try connection.prepared(pruneOwnExpired)
            pruning.bind(1, application)
            pruning.bind(2, now.timeIntervalSince1970)
            defer { pruning.reset() }
            try pruning.run()
            let statement = try connection.prepared(insert)
            defer { statement.reset() }
            statement.bind(1, application)
            statement.bind(2, state.state)
            statement.bind(3, state.key)
            statement.bind(4, state.options)
            statement.bind(5, state.expiresAt.timeIntervalSince1970)
            try statement.run()
            let bounding = try connection.prepared(bound)
            defer { bounding.reset() }
            bounding.bind(1, application)
            bounding.bind(2, Int64(max(capacity, 1)))
            try bounding.run()
        }
    }

    static func consume(
        _ state: String, now: Date, _ application: String, _ connection: SQLiteConnection
    ) throws(StoreError) -> StateClaim {
        try TokenRows.sqlite("could not read a Connect state") { () throws(SQLiteError) -> StateClaim in
            let statement = try connection.prepared(consume)
            statement.bind(1, application)
            statement.bind(2, state)
            statement.bind(3, now.timeIntervalSince1970)
            if try statement.step() {
                let claimed = ConnectState(
                    state: state, key: statement.optionalText(0), options: statement.optionalText(1),
                    expiresAt: Date(timeIntervalSince1970: statement.double(2)))
                while try statement.step() {}
                statement.reset()
                return .valid(claimed)
            }
            statement.reset()
            let lookup = try connection.prepared(status)
            defer { lookup.reset() }
            lookup.bind(1, application)
            lookup.bind(2, state)
            guard try lookup.step() else { return .unknown }
            return lookup.int64(0) != 0 ? .reused : .expired
        }
    }

    static func prune(now: Date, _ connection: SQLiteConnection) throws(StoreError) -> Int {
        try TokenRows.sqlite("could not prune the Connect states") { () throws(SQLiteError) in
            let statement = try connection.prepared(pruneExpired)
            defer { statement.reset() }
            statement.bind(1, now.timeIntervalSince1970)
            try statement.run()
            return connection.changes
        }
    }
}
