import AgentTestSupport

/// The store inspector of a PostgreSQL database, on a connection of its own: reads the `tokens` table of the
/// agents' schema; its lock is `PostgresSession.lockTables(ofSchema:)`.
final class PostgreSQLStoreInspector: StoreInspector {
    private let session: PostgresSession
    private let schema: String
    private(set) var locked = false
    private let clientSecret: String

    /// `clientSecret`: the agents' one, which opens the sealed token values.
    init(uri: String, schema: String = "smartcar_auth", clientSecret: String) throws(StoreInspectorFailure) {
        self.clientSecret = clientSecret
        do {
            session = try PostgresSession(uri)
        } catch {
            throw StoreInspectorFailure(description: "cannot open the store: \(error)")
        }
        self.schema = schema
    }

    deinit { close() }

    func rows() throws(StoreInspectorFailure) -> [ModelKey: InspectedRow] {
        let sql = """
            SELECT key, access_token, refresh_token, needs_reauth, application, generation
            FROM \(PostgresSession.quoted(schema)).tokens
            """
        let columns = PostgreSQLSealedColumns(session: session, schema: schema, clientSecret: clientSecret)
        var rows: [ModelKey: InspectedRow] = [:]
        do {
            for row in try session.query(sql) {
                let key = ModelKey(row[0] ?? "")
                let (name, application, generation) = (row[0] ?? "", row[4] ?? "", Int64(row[5] ?? "") ?? 0)
                rows[key] = InspectedRow(
                    key: key,
                    accessToken: try columns.value(
                        row[1], name: .accessToken, key: name, application: application, generation: generation),
                    refreshToken: try columns.value(
                        row[2], name: .refreshToken, key: name, application: application, generation: generation),
                    needsReauth: row[3] == "t")
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
