#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one rule for files that hold secrets (the token store, its folder, the client-secret file): owned by
/// this user, neither readable nor writable by group or others. Every caller refuses with the message this
/// gives, which names the path and the command that fixes it.
package enum PrivateFile {
    /// Why a file is refused: `owner` (another user owns it), `mode` (group/others may read or write it).
    package struct Refusal: Error, Sendable, Equatable {
        package var message: String
    }

    /// The refusal for a file with `info` (from `stat`/`fstat` of `path`), or nil when it is private.
    /// `what` names the file in the message ("token store"), `fix` is the command to suggest ("chmod 600").
    package static func refusal(for info: stat, path: String, what: String, fix: String) -> Refusal? {
        let mode = UInt32(info.st_mode) & 0o7777
        // A folder others may create files in (/tmp, /var/tmp): narrowing it would break every other user of it.
        if (info.st_mode & S_IFMT) == S_IFDIR, mode & 0o1002 != 0 {
            return Refusal(
                message:
                    "refusing to use \(what) \(path): it is a folder other users can write in (mode \(octal(mode))); "
                    + "use a private folder of your own instead (created with mkdir -m 700), never chmod a shared one")
        }
        if info.st_uid != geteuid() {
            return Refusal(
                message:
                    "refusing to use \(what) \(path): it is owned by uid \(info.st_uid), not by this user (uid \(geteuid()))"
            )
        }
        let readable = mode & 0o044 != 0
        let writable = mode & 0o022 != 0
        guard readable || writable else { return nil }
        let access = readable && writable ? "readable and writable" : readable ? "readable" : "writable"
        return Refusal(
            message:
                "refusing to use \(what) \(path): it is \(access) by group/others (mode \(octal(mode))); run \(fix) \(path)"
        )
    }

    /// The refusal for a symbolic link at `path` (a file that must be used where it is, not through a link).
    package static func symlinkRefusal(path: String, what: String) -> Refusal {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, buffer.count - 1)
        let target =
            count > 0 ? " to " + String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        return Refusal(
            message:
                "refusing to use \(what) \(path): it is a symbolic link\(target); give the real file's path instead, or move the file there"
        )
    }

    /// The contents of the secret file at `path`, read through one descriptor after checking that very file
    /// (`fstat`) against the rule above. A symbolic link is followed (secret mounts use them) and the file it
    /// leads to is what is checked. `what` names the file in messages ("client secret file").
    package static func readSecret(_ path: String, what: String) throws(Refusal) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw Refusal(message: "the \(what) \(path) \(errno == ENOENT ? "does not exist" : "cannot be read")")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw Refusal(message: "the \(what) \(path) cannot be read")
        }
        if let refusal = refusal(for: info, path: path, what: what, fix: "chmod 600") { throw refusal }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw Refusal(message: "the \(what) \(path) cannot be read") }
            if count == 0 { break }
            contents += buffer[..<count]
        }
        return contents
    }

    /// `mode` as four octal digits (`0640`).
    package static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
