import AgentSupport
import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Notices that the store's file was deleted or replaced (`rm`, `mv`) under the agent. Without it SQLite keeps
/// writing into the file it opened, which no longer has a name: every write answers success and is gone at exit.
///
/// Compares the identity (device, inode) of the file at the path with the one opened, before every write group
/// (and once more just before its COMMIT) and, at most every `readCheckInterval`, before a read. When they
/// differ, the old file's tokens are copied to `<path>.orphaned-<UTC stamp>` (the old file may have been
/// unlinked: its rotated refresh tokens would otherwise die with the connection), its WAL is emptied and it is
/// closed. Then a store at the path (a replacement, or one another agent created) is opened with the start-up
/// rules; while there is none, every call answers an `.io` error and nothing is written.
///
/// Not thread-safe: only used on the store's queue (`StoreQueue`).
final class StoreFileWatch {
    let path: String
    private var identity: FileIdentity
    private let reopen: () throws(StoreError) -> (SQLiteConnection, FileIdentity)
    private let logger: Logger
    private var lastCheck: UInt64 = 0
    /// The error answered while no usable file is open (the old one retired, no valid store at the path).
    private var lost: StoreError?

    /// Reads look at the path at most this often (one `lstat`); writes always do.
    static let readCheckInterval: UInt64 = 100_000_000

    init(
        path: String, identity: FileIdentity, logger: Logger,
        reopen: @escaping () throws(StoreError) -> (SQLiteConnection, FileIdentity)
    ) {
        self.path = path
        self.identity = identity
        self.logger = logger
        self.reopen = reopen
    }

    /// Whether the file at the path is still the one open (cheap: one `lstat`); false while none is.
    var isInPlace: Bool { lost == nil && StoreFiles.identity(of: path) == identity }

    /// Checks that `connection` still has the file at the path open, replacing it with the store now there if
    /// not. Answers nil when `connection` may be used, else the error to answer.
    func check(_ connection: inout SQLiteConnection, forWrite: Bool) -> StoreError? {
        let now = DispatchTime.now().uptimeNanoseconds
        if !forWrite, lastCheck != 0, now &- lastCheck < Self.readCheckInterval { return lost }
        lastCheck = now
        let current = StoreFiles.identity(of: path)
        if lost == nil {
            if current == identity { return nil }
            if let error = retire(connection, deleted: current == nil) { return error }
        }
        guard current != nil else { return lost }
        do {
            let (opened, openedIdentity) = try reopen()
            connection = opened
            identity = openedIdentity
            lost = nil
            logger.error(
                "token store \(path): now using the store found at that path (it replaced the file this agent had open)"
            )
            return nil
        } catch {
            let refused = StoreError(
                error.kind,
                "the token store \(path) was replaced while the agent was running and the file now there cannot be used: \(error.message)"
            )
            if lost != refused { logger.error(refused.message) }
            lost = refused
            return refused
        }
    }

    /// Before the store closes: when the file open is no longer at the path, its tokens are copied aside (they
    /// would otherwise go with the unlinked file) and it is let go as when a check notices.
    func retireIfDetached(_ connection: SQLiteConnection) {
        guard lost == nil, connection.isOpen else { return }
        let current = StoreFiles.identity(of: path)
        guard current != identity, retire(connection, deleted: current == nil) != nil else { return }
        _ = saveCopy(connection)  // it could not be let go cleanly: at least its tokens are kept
    }

    /// Empties the old file's WAL (a store put at the path must never read the old one's frames), saves a copy
    /// of its tokens and closes it without deleting its `-wal`/`-shm` by name. Answers an error when the old file must stay open for now.
    private func retire(_ connection: SQLiteConnection, deleted: Bool) -> StoreError? {
        let what = deleted ? "deleted or moved away" : "replaced by another file"
        do {
            let result = try connection.firstColumn("PRAGMA wal_checkpoint(TRUNCATE)")
            guard result.first == "0" else {
                let error = StoreError(
                    .busy,
                    "the token store \(path) was \(what) while the agent was running; its old file is still in use by another connection, retrying"
                )
                logger.error(error.message)
                return error
            }
        } catch {
            // Its frames could be replayed into the store at the path: keep it open and retry at the next check.
            let error = StoreError(
                .io,
                "the token store \(path) was \(what) while the agent was running; its old file's WAL could not be emptied (\(error.message)), retrying"
            )
            logger.error(error.message)
            return error
        }
        let copy = saveCopy(connection)
        connection.keepWALFilesOnClose()
        connection.close()
        let saved = copy.map { "its tokens were copied to \($0)" } ?? "its tokens could NOT be copied, they are lost"
        lost = StoreError(
            .io,
            "the token store \(path) was \(what) while the agent was running; nothing is written until a valid store is at that path (restart the agent to start an empty one); \(saved)"
        )
        logger.error(lost!.message)
        return nil
    }

    /// `VACUUM INTO` a new 0600 file beside the store; its path, or nil (logged) when that failed.
    private func saveCopy(_ connection: SQLiteConnection) -> String? {
        let copy = "\(path).orphaned-\(StoreFiles.utcStamp(Date()))-\(UInt32.random(in: 0...UInt32.max))"
        do throws(StoreError) {
            try StoreFiles.createPrivateFile(copy)
            do { try connection.execute("VACUUM INTO '\(copy.replacingOccurrences(of: "'", with: "''"))'") } catch {
                unlink(copy)
                throw error.storeError("VACUUM INTO failed")
            }
            StoreFiles.syncFolder(of: copy)
            return copy
        } catch {
            logger.error("token store \(path): could not copy the old file's tokens to \(copy): \(error.message)")
            return nil
        }
    }
}
