/// The model suite's own connection to the agents' token store (`SQLiteStoreInspector`,
/// `PostgreSQLStoreInspector`): reads every row by the key's exact bytes, and can stop every write of every
/// agent (`storageError`) until `unlock()`, as on a disk that stopped taking writes. Tests run as root, so
/// `chmod` cannot do that.
protocol StoreInspector: AnyObject {
    var locked: Bool { get }
    /// Every row of the store, keyed by the key's bytes.
    func rows() throws(StoreInspectorFailure) -> [ModelKey: InspectedRow]
    /// Takes the lock (waiting for a writer that holds it) and keeps it until `unlock()`; reads go on.
    func lock() throws(StoreInspectorFailure)
    func unlock()
    func close()
}

struct StoreInspectorFailure: Error, CustomStringConvertible {
    var description: String
}

/// One row, as the model compares it.
struct InspectedRow {
    var key: ModelKey
    var accessToken: String
    var refreshToken: String
    var needsReauth: Bool
}
