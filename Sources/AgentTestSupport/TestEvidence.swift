import FakeSmartcar
import Foundation
import TokenStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a test run's stores leave behind, kept for `agent-reliability scan-stores` at the run's end (issue 15: no
/// token value in any store the tests leave). Only when `SMARTCAR_AUTH_TEST_EVIDENCE` names a folder
/// (`Tests/all.sh` sets it); unset, nothing is kept. In that folder:
/// - `values`: the token values the fake and the tests handed out (`EvidenceValues`);
/// - `stores/<folder>/…`: each `TemporaryFolder`'s SQLite files (with their WAL, SHM, journal and moved-aside
///   copies), copied before the folder goes away;
/// - `excluded/<folder>/…`: the same for a folder a test marked with `exclude(_:because:)`, and the reason;
/// - `postgres/<cluster>.started`, `postgres/<cluster>.sql`: each `PostgresCluster`, and its `pg_dumpall` taken
///   just before it stops.
package enum TestEvidence {
    static let stores = "stores"
    static let excluded = "excluded"
    static let postgres = "postgres"
    /// The file in a marked folder (and in its evidence copy) holding why its stores hold plaintext.
    package static let exclusionReason = "scan-excluded-because"

    package static var folder: String? { EvidenceValues.folder }

    /// Records the token values of rows a test writes itself (`EvidenceValues`); returns them.
    @discardableResult
    package static func record(_ tokens: [StoredToken]) -> [StoredToken] {
        EvidenceValues.record(tokens.flatMap { [$0.accessToken, $0.refreshToken] })
        return tokens
    }

    /// Marks `folder`'s stores as plaintext on purpose (a test of the unsealed mode): the scan keeps them apart,
    /// shows their hits as expected, and does not fail on them.
    package static func exclude(_ folder: TemporaryFolder, because reason: String) throws {
        try Data(reason.utf8).write(to: URL(fileURLWithPath: folder.file(exclusionReason)))
    }

    /// Copies the SQLite files under `path` into the evidence folder (see the type's comment).
    static func keepStoreFiles(of path: String) {
        guard let evidence = folder, !path.hasPrefix(evidence) else { return }
        let manager = FileManager.default
        let reason = try? String(contentsOfFile: path + "/" + exclusionReason, encoding: .utf8)
        let target = evidence + "/" + (reason == nil ? stores : excluded) + "/" + (path as NSString).lastPathComponent
        let found = (manager.subpaths(atPath: path) ?? []).filter { isStoreFile(path + "/" + $0) }
        guard !found.isEmpty else { return }
        for relative in found {
            let copy = target + "/" + relative
            try? manager.createDirectory(
                atPath: (copy as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            try? manager.copyItem(atPath: path + "/" + relative, toPath: copy)
        }
        if let reason { try? Data(reason.utf8).write(to: URL(fileURLWithPath: target + "/" + exclusionReason)) }
    }

    /// A SQLite database or one of its companions: by SQLite's header, or by the names the store gives them
    /// (`tokens.sqlite3`, `-wal`, `-shm`, `-journal`, `.corrupt-…` copies moved aside).
    static func isStoreFile(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
        let name = (path as NSString).lastPathComponent
        if name.contains(".sqlite") || ["-wal", "-shm", "-journal"].contains(where: name.hasSuffix) { return true }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 16)) == Data("SQLite format 3\0".utf8)
    }

    /// The file a cluster's evidence goes to, `postgres/<cluster folder>.<suffix>`, its folder made.
    static func postgresFile(cluster path: String, suffix: String) -> String? {
        guard let evidence = folder else { return nil }
        let target = evidence + "/" + postgres
        try? FileManager.default.createDirectory(
            atPath: target, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return target + "/" + (path as NSString).lastPathComponent + "." + suffix
    }
}
