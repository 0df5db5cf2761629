import AgentSupport
import CSQLite
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The blocking part of `TokenStore.open`: folder and file checks, SQLite settings, validation,
/// moving an unusable file aside, migrations. Runs once on the opening thread, before the store's queue exists.
struct StoreOpener {
    var strict: Bool
    var busyTimeoutMilliseconds: Int32
    /// The application the store is opened for: it claims rows written before rows had one.
    var application: String
    /// What the application's token columns are sealed with (nil: unsealed).
    var secrets: StoreSecrets?
    var logger: Logger

    /// `PRAGMA quick_check` reads every page: measured 70 ms for a 100,000-row (19 MiB) store and 0.6 s
    /// for a million rows, about 4 ms per MiB. It only runs on files up to this size (a few thousand
    /// tokens), so an open stays within a few milliseconds. Bigger files rely on SQLite's own checks:
    /// a truncated file fails the first read (header page count beyond the file size: SQLITE_CORRUPT),
    /// and damage deeper in the file surfaces as a `.corrupt` error from the operation that reads it.
    static let quickCheckLimitBytes = 1 << 20

    /// The open connection and, for a file, the identity of the file it opened (to notice it being deleted
    /// or replaced later).
    func open(_ location: StoreLocation) throws(StoreError) -> (SQLiteConnection, FileIdentity?) {
        switch location {
        case .memory: return (try openMemory(), nil)
        case .file(let path): return try openFile(path)
        case .postgres(let uri):
            throw StoreError(.io, "\(PostgreSQLURI.withoutPassword(uri)) is a PostgreSQL store, not a SQLite one")
        }
    }

    private func openMemory() throws(StoreError) -> SQLiteConnection {
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: ":memory:", flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        } catch {
            throw error.storeError("could not create the in-memory token store")
        }
        try Schema.migrate(connection, path: ":memory:")
        do { try TokenRows.prepareAll(connection) } catch {
            throw error.storeError("could not prepare the in-memory token store")
        }
        _ = try SQLiteSealing.prepare(secrets, application: application, connection, path: ":memory:", logger: .silent)
        return connection
    }

    func openFile(_ path: String) throws(StoreError) -> (SQLiteConnection, FileIdentity) {
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw StoreError(.io, "the token store path '\(path)' must name a file")
        }
        try StoreFiles.prepareFolder(StoreFiles.folder(of: path))
        let lock = try StoreFiles.lockForOpening(path)
        defer { StoreFiles.unlock(lock) }
        do {
            return try identified(openValidated(path), path: path)
        } catch {
            guard error.kind == .corrupt || error.kind == .futureSchema else { throw error }
            if strict {
                throw StoreError(error.kind, "\(error.message); left untouched because the store was opened strictly")
            }
            let aside = try StoreFiles.moveAside(path, now: Date())
            logger.error(
                "token store \(path) is unusable (\(error.message)); moved it aside to \(aside) and started an empty store: its tokens are gone unless recovered from that file, users must go through Connect again"
            )
            return try identified(openValidated(path), path: path)
        }
    }

    /// Pairs `connection` with the identity of the file at `path`, checking that SQLite has that very file
    /// open (nothing swapped it between our checks and SQLite's open).
    private func identified(
        _ connection: SQLiteConnection, path: String
    ) throws(StoreError) -> (SQLiteConnection, FileIdentity) {
        guard let identity = StoreFiles.identity(of: path), !identity.isSymlink, !connection.fileHasMoved else {
            connection.close()
            throw StoreError(.io, "the token store \(path) was replaced or removed while it was being opened")
        }
        return (connection, identity)
    }

    /// Opens `path` (creating it 0600 if missing) and checks it is a token store this code can use.
    /// Throws `corrupt` or `futureSchema` with the connection closed and the file unchanged.
    private func openValidated(_ path: String) throws(StoreError) -> SQLiteConnection {
        for suffix in [""] + StoreFiles.sidecarSuffixes { try StoreFiles.refuseSymlink(path + suffix) }
        if try !StoreFiles.checkPrivate(path) {
            try moveLeftoverSidecarsAside(path)
            try StoreFiles.createPrivateFile(path)
        }
        for suffix in StoreFiles.sidecarSuffixes { try StoreFiles.checkPrivate(path + suffix) }
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READWRITE)
        } catch {
            throw error.storeError("could not open the token store \(path)")
        }
        connection.setBusyTimeout(milliseconds: busyTimeoutMilliseconds)
        do throws(StoreError) {
            // Read-only checks first: nothing is written to a file we may still refuse.
            _ = try Schema.version(of: connection, path: path)
            try quickCheckIfSmall(connection, path: path)
            try configure(connection, path: path)
            try Schema.migrate(connection, path: path)
            try Schema.claimUnboundRows(for: application, connection, path: path, logger: logger)
            do { try TokenRows.prepareAll(connection) } catch {
                throw error.isBusy
                    ? error.storeError("could not prepare \(path)")
                    : StoreError(.corrupt, "\(path) does not have the expected tables: \(error.message)")
            }
            _ = try SQLiteSealing.prepare(secrets, application: application, connection, path: path, logger: logger)
        } catch {
            connection.close()
            throw error
        }
        StoreFiles.tightenSidecars(of: path)
        StoreFiles.syncFolder(of: path)
        return connection
    }

    /// A `-wal`/`-shm`/`-journal` without its database belongs to a store that was deleted (perhaps under a
    /// running agent): SQLite would replay it into the new, empty file. Empty ones (what an agent leaves when it
    /// lets go of a deleted store) are removed; any holding data is moved aside, never replayed.
    private func moveLeftoverSidecarsAside(_ path: String) throws(StoreError) {
        let holdsData = StoreFiles.sidecarSuffixes.contains { suffix in
            var info = stat()
            return lstat(path + suffix, &info) == 0 && suffix != "-shm" && info.st_size > 0
        }
        guard holdsData else {
            for suffix in StoreFiles.sidecarSuffixes { unlink(path + suffix) }
            return
        }
        let aside = try StoreFiles.moveAside(path, now: Date())
        logger.error(
            "token store \(path) is missing but its -wal/-journal file was left behind holding data (the store was deleted); moved it aside to \(aside)-wal… and started an empty store"
        )
    }

    private func quickCheckIfSmall(_ connection: SQLiteConnection, path: String) throws(StoreError) {
        var info = stat()
        guard stat(path, &info) == 0, Int(info.st_size) <= Self.quickCheckLimitBytes else { return }
        let result: [String]
        do { result = try connection.firstColumn("PRAGMA quick_check(1)") } catch {
            throw error.storeError("\(path) failed its integrity check")
        }
        guard result == ["ok"] else {
            throw StoreError(.corrupt, "\(path) failed its integrity check: \(result.first ?? "no answer")")
        }
    }

    /// WAL (readers never block the writer, other processes included) and synchronous=FULL (a commit
    /// has reached the disk when COMMIT returns: a rotated refresh token must survive a power cut).
    private func configure(_ connection: SQLiteConnection, path: String) throws(StoreError) {
        do {
            let mode = try connection.firstColumn("PRAGMA journal_mode = WAL")
            if mode != ["wal"] {
                logger.warning(
                    "token store \(path) could not switch to WAL (journal mode is \(mode.first ?? "unknown")); writers will block readers"
                )
            }
            try connection.execute("PRAGMA synchronous = FULL")
            // Deleted and replaced content is overwritten with zeros, not left in free space.
            try connection.execute("PRAGMA secure_delete = ON")
        } catch {
            throw error.storeError("could not configure \(path)")
        }
    }
}
