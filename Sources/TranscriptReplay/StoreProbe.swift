import WireFormats

/// The harness's own look into the reference agent's token store, used by the `assertStore` and `lockStore`
/// steps only: a SQLite file (`SQLiteStoreProbe`) or a PostgreSQL database (`PostgreSQLStoreProbe`), chosen by
/// what `{{store}}` names. An implementation with another store skips those scenarios.
protocol StoreProbe: AnyObject {
    /// The key's row as JSON (`key`, `accessToken`, `refreshToken`, `expiresAt`, `generation`,
    /// `needsReauth`), or nil when the store has no such key.
    func row(_ key: String) throws(StoreProbeFailure) -> JSONValue?
    /// Stops every write of the agent until `close()`: each waits out the agent's `--store-busy-timeout` and
    /// fails, as on a disk that stopped taking writes. Reads still work.
    func lock() throws(StoreProbeFailure)
    func close()
}

struct StoreProbeFailure: Error, CustomStringConvertible {
    var description: String
}

/// Opens the probe for `store`, the value `{{store}}` was bound to: a libpq URI or a SQLite file's path.
/// `clientSecret` (the agents' `SMARTCAR_CLIENT_SECRET`) opens sealed token values.
func openStoreProbe(_ store: String, clientSecret: String?) throws(StoreProbeFailure) -> any StoreProbe {
    if store.hasPrefix("postgresql://") || store.hasPrefix("postgres://") {
        return try PostgreSQLStoreProbe(uri: store, clientSecret: clientSecret)
    }
    return try SQLiteStoreProbe(path: store, clientSecret: clientSecret)
}
