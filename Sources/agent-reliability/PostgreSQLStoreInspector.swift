import AgentTestSupport

/// The store inspector of a PostgreSQL database, on a connection of its own: reads the `tokens` table of the
/// agents' schema; its lock is `PostgresSession.lockTables(ofSchema:)`.
final class PostgreSQLStoreInspector: StoreInspector {
    private let session: PostgresSession
    private let schema: String
    private(set) var locked = false

    init(uri: String, schema: String = "smartcar_auth") throws(StoreInspectorFailure) {
        do {
            session = try PostgresSession(uri)
        } catch {
            throw StoreInspectorFailure(description: "cannot open the store: \(error)")
        }
        self.schema = schema
    }

    deinit { close() }

    func rows() throws(StoreInspectorFailure) -> [ModelKey: InspectedRow] {
        let sql = "SELECT key, access_token, refresh_token, needs_reauth FROM \(PostgresSession.quoted(schema)).tokens"
        var rows: [ModelKey: InspectedRow] = [:]
        do {
            for row in try session.query(sql) {
                let key = ModelKey(row[0] ?? "")
                rows[key] = InspectedRow(
                    key: key, accessToken: row[1] ?? "", refreshToken: row[2] ?? "", needsReauth: row[3] == "t")
            }
        } catch {
            throw StoreInspectorFailure(description: "cannot read the store: \(error)")
        }
        return rows
    }

    func lock() throws(StoreInspectorFailure) {
        do {
            try session.lockTables(ofSchema: schema)
        } catch {
            throw StoreInspectorFailure(description: "cannot lock the store: \(error)")
        }
        locked = true
    }

    func unlock() {
        if locked { session.rollback() }
        locked = false
    }

    func close() {
        unlock()
        session.close()
    }
}
