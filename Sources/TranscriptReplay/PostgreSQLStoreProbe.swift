import AgentTestSupport
import Foundation
import TokenStore
import WireFormats

/// The store probe of a PostgreSQL database, through a connection of its own: reads the `tokens` table of the
/// agent's schema (`smartcar_auth`), and locks with `PostgresSession.lockTables(ofSchema:)`; closing the
/// connection releases the lock.
final class PostgreSQLStoreProbe: StoreProbe {
    private let session: PostgresSession
    private let schema: String
    private let clientSecret: String?

    /// `clientSecret`: the agents' one, which opens the sealed token values.
    init(uri: String, schema: String = "smartcar_auth", clientSecret: String?) throws(StoreProbeFailure) {
        do {
            session = try PostgresSession(uri)
        } catch {
            throw StoreProbeFailure(description: "cannot open the store: \(error)")
        }
        self.schema = schema
        self.clientSecret = clientSecret
    }

    deinit { close() }

    func row(_ key: String) throws(StoreProbeFailure) -> JSONValue? {
        let rows = try run(
            """
            SELECT key, access_token, refresh_token, expires_at, generation, needs_reauth, application FROM \(PostgresSession.quoted(schema)).tokens WHERE key = $1
            """, [key])
        guard let row = rows.first else { return nil }
        let expiresAt = Date(timeIntervalSince1970: Double(row[3] ?? "") ?? 0)
        let columns = PostgreSQLSealedColumns(session: session, schema: schema, clientSecret: clientSecret)
        func token(_ index: Int, _ name: TokenSealer.Column) throws(StoreProbeFailure) -> String {
            do {
                return try columns.value(
                    row[index], name: name, key: row[0] ?? "", application: row[6] ?? "",
                    generation: Int64(row[4] ?? "") ?? 0)
            } catch {
                throw StoreProbeFailure(description: error.description)
            }
        }
        return .object([
            "key": .string(row[0] ?? ""),
            "accessToken": .string(try token(1, .accessToken)),
            "refreshToken": .string(try token(2, .refreshToken)),
            "expiresAt": .string(expiresAt.formatted(.iso8601)),
            "generation": .int(Int64(row[4] ?? "") ?? -1),
            "needsReauth": .bool(row[5] == "t"),
        ])
    }

    func lock() throws(StoreProbeFailure) {
        do {
            try session.lockTables(ofSchema: schema)
        } catch {
            throw StoreProbeFailure(description: "cannot lock the store: \(error)")
        }
    }

    func close() { session.close() }

    @discardableResult
    private func run(_ sql: String, _ parameters: [String] = []) throws(StoreProbeFailure) -> [[String?]] {
        do {
            return try session.query(sql, parameters)
        } catch {
            throw StoreProbeFailure(description: "the store: \(error)")
        }
    }
}
