import AgentSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The file-system side of the store: a private folder and files whatever the umask, refusal of files
/// other users could read or write, the open lock, and moving an unusable store aside.
enum StoreFiles {
    /// Files SQLite keeps beside the database; they hold token data too.
    static let sidecarSuffixes = ["-wal", "-shm", "-journal"]

    /// Creates `folder` (and missing parents) with mode 0700, chmod-ed so the umask cannot widen or
    /// narrow it, then checks that the folder is private.
    static func prepareFolder(_ folder: String) throws(StoreError) {
        var prefix = folder.hasPrefix("/") ? "" : "."
        for component in folder.split(separator: "/") {
            prefix += "/" + component
            if isDirectory(prefix) { continue }
            if mkdir(prefix, 0o700) == 0 {
                chmod(prefix, 0o700)
            } else if errno != EEXIST {
                throw StoreError(.io, "could not create the token store folder \(prefix): \(errorText())")
            }
        }
        guard isDirectory(folder) else { throw StoreError(.io, "the token store folder \(folder) is not a folder") }
        try checkPrivate(folder, what: "token store folder", fix: "chmod 700")
    }

    /// Checks that `path`, if it exists, belongs to this user and that group and others can neither read nor
    /// write it (the rule `PrivateFile` states for every secret file). Returns whether it exists.
    @discardableResult
    static func checkPrivate(
        _ path: String, what: String = "token store", fix: String = "chmod 600"
    ) throws(StoreError) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return false }
            throw StoreError(.io, "could not inspect \(what) \(path): \(errorText())")
        }
        if let refusal = PrivateFile.refusal(for: info, path: path, what: what, fix: fix) {
            throw StoreError(.permissions, refusal.message)
        }
        return true
    }

    /// Refuses a symbolic link at `path`: SQLite would follow it, turn the target into the database and put
    /// its `-wal`/`-shm` beside the target, in a folder nobody checked.
    static func refuseSymlink(_ path: String, what: String = "token store") throws(StoreError) {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK else { return }
        throw StoreError(.permissions, PrivateFile.symlinkRefusal(path: path, what: what).message)
    }

    /// Which file is at `path` now (nil when there is none), without following a symbolic link.
    static func identity(of path: String) -> FileIdentity? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return FileIdentity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), isSymlink: (info.st_mode & S_IFMT) == S_IFLNK)
    }

    /// Creates an empty database file with mode 0600 (never wider, whatever the umask) and makes its
    /// folder entry durable, so SQLite never creates the file with its default mode.
    static func createPrivateFile(_ path: String) throws(StoreError) {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StoreError(.io, "could not create the token store \(path): \(errorText())") }
        defer { close(fd) }
        guard fchmod(fd, 0o600) == 0, fsync(fd) == 0 else {
            throw StoreError(.io, "could not set up the token store \(path): \(errorText())")
        }
        syncFolder(of: path)
    }

    /// Narrows SQLite's sidecar files to 0600 (SQLite copies the database's mode, this is a safety net).
    static func tightenSidecars(of path: String) {
        for suffix in sidecarSuffixes {
            var info = stat()
            if stat(path + suffix, &info) == 0, info.st_uid == geteuid(), UInt32(info.st_mode) & 0o077 != 0 {
                chmod(path + suffix, 0o600)
            }
        }
    }

    /// Takes an exclusive lock on `<path>.lock` (created 0600, never renamed or deleted) so two agents
    /// opening the same store do not both repair it: without it, the second could move aside the fresh
    /// store the first has just created. Returns the descriptor to pass to `unlock`.
    static func lockForOpening(_ path: String) throws(StoreError) -> Int32 {
        let lockPath = path + ".lock"
        try refuseSymlink(lockPath, what: "token store lock file")
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StoreError(.io, "could not open the lock file \(lockPath): \(errorText())") }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_uid == geteuid(), UInt32(info.st_mode) & 0o777 != 0o600 {
            fchmod(fd, 0o600)
        }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let text = errorText()
            close(fd)
            throw StoreError(.io, "could not lock \(lockPath): \(text)")
        }
        return fd
    }

    static func unlock(_ fd: Int32) {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Renames the database and its sidecars to `<path>.corrupt-<UTC yyyyMMdd'T'HHmmss'Z'>` (plus `-wal`…,
    /// so SQLite can still open the pair), never replacing an existing file. Returns the new database path.
    static func moveAside(_ path: String, now: Date) throws(StoreError) -> String {
        let stamp = utcStamp(now)
        var target = "\(path).corrupt-\(stamp)"
        var attempt = 1
        while ([""] + sidecarSuffixes).contains(where: { exists(target + $0) }) {
            attempt += 1
            target = "\(path).corrupt-\(stamp)-\(attempt)"
        }
        // Sidecars first: if a rename fails, a stale -wal is never left beside the fresh database,
        // where SQLite would replay it.
        for suffix in sidecarSuffixes + [""] where exists(path + suffix) {
            guard rename(path + suffix, target + suffix) == 0 else {
                throw StoreError(
                    .io,
                    "could not move the unusable token store \(path + suffix) aside to \(target + suffix): \(errorText())"
                )
            }
        }
        syncFolder(of: path)
        return target
    }

    /// fsyncs the folder holding `path`, making a creation or rename in it durable.
    static func syncFolder(of path: String) {
        let fd = open(folder(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func utcStamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
            parts.tm_min, parts.tm_sec)
    }

    private static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

/// A file's identity (device and inode): the store compares the one it opened with the one at its path, to see
/// that the file was deleted or replaced under it.
struct FileIdentity: Sendable, Equatable {
    var device: UInt64
    var inode: UInt64
    var isSymlink: Bool
}
