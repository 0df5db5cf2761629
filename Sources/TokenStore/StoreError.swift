/// Why the token store could not do what was asked. Messages name paths, keys and the database's own text,
/// never a token value or a password, so they can be logged and sent to clients as they are.
package struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The file or its folder is readable or writable by other users, or owned by someone else.
        case permissions
        /// The file is not a usable token store (garbage, truncated, another program's database).
        case corrupt
        /// The store was written by a newer version of the agent (schema version above what this code knows).
        case futureSchema
        /// Another connection kept the database locked for longer than the busy timeout; retrying may work.
        case busy
        /// A sealed value does not open in its place (altered, or moved from another row, column or store), or
        /// sealing failed. Never a reason to ask the user to connect again: the row is left as it is.
        case sealing
        /// The store's tokens were sealed with another client secret or store key than the one given.
        case wrongKey
        /// The database server could not be reached or the connection broke (PostgreSQL); retrying may work. A write
        /// that failed so may or may not have been committed.
        case unavailable
        /// The store was closed with `close()`.
        case closed
        /// Anything else the file system or SQLite reported (disk full, I/O error, missing folder…).
        case io
    }

    package var kind: Kind
    package var message: String

    package init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    package var description: String { "token store \(kind.rawValue) error: \(message)" }
}
