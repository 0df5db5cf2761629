import Foundation
import Sealing
import TokenStore
import WireFormats

/// Reads a token column of a PostgreSQL store through a harness's own session (transcript probes, the model and
/// race suites' inspectors): plain text where the application has no sealing key yet, else base64 of a sealed
/// value, opened with the key the agents' client secret gives for the row's application.
package struct PostgreSQLSealedColumns {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    private let session: PostgresSession
    private let schema: String
    private let clientSecret: String?

    package init(session: PostgresSession, schema: String, clientSecret: String?) {
        self.session = session
        self.schema = schema
        self.clientSecret = clientSecret
    }

    /// The `name` column of `key`'s row at `generation`, as stored in `text`.
    package func value(
        _ text: String?, name: TokenSealer.Column, key: String, application: String, generation: Int64
    ) throws(Failure) -> String {
        guard let sealer = try sealer(application) else { return text ?? "" }
        guard let text, let sealed = Data(base64Encoded: text) else {
            throw Failure(description: "the stored \(name.rawValue) of \(key) is not sealed in a sealed store")
        }
        do {
            return try sealer.open(Array(sealed), key: key, column: name, generation: generation)
        } catch {
            throw Failure(description: "cannot open the stored \(name.rawValue) of \(key): \(error)")
        }
    }

    private func sealer(_ application: String) throws(Failure) -> TokenSealer? {
        let table = PostgresSession.quoted(schema)
        let found: [[String?]]
        do {
            found = try session.query(
                """
                SELECT m.store_id, encode(m.sealing_salt, 'hex') FROM \(table).store_meta m
                WHERE EXISTS (SELECT 1 FROM \(table).sealing_keys WHERE application = $1)
                """, [application])
        } catch {
            throw Failure(description: "cannot read the store's id and salt: \(error)")
        }
        guard let row = found.first else { return nil }
        guard let clientSecret else {
            throw Failure(description: "the store's tokens are sealed, and no agent was given SMARTCAR_CLIENT_SECRET")
        }
        let salt = Hexadecimal.bytes(row[1] ?? "") ?? []
        do {
            return try TokenSealer(
                secret: .clientSecret(SecretBytes(Array(clientSecret.utf8))), storeID: row[0] ?? "", salt: salt,
                application: application)
        } catch {
            throw Failure(description: "cannot derive the store's sealing key: \(error)")
        }
    }
}
