import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import TokenStore
import WireFormats

/// The store file deleted (`rm`) or moved away (`mv`) under a running agent while a refresh is at Smartcar,
/// then a valid store put at the path. What Protocol/README.md promises ("The store file deleted or
/// replaced"): the agent notices before its next write and writes nothing into the file that lost the name
/// (the moved file keeps the spent tokens); it copies the tokens it had open to `<store>.orphaned-…` (mode
/// 0600); while no store is at the path every call that touches the store answers `storageError` and no
/// file appears there; a store put at the path is used from then on; and the refresh's rotated tokens are
/// never lost in silence: their key is named in an error or warning line.
extension CrashSuite {
    enum StoreRemoval: String, CaseIterable {
        /// `rm tokens.sqlite3` (its write-ahead log stays).
        case deleted
        /// `mv tokens.sqlite3* elsewhere/`.
        case movedAway
    }

    func storeReplacements(_ report: Report) async throws {
        var outcomes: [String: Int] = [:]
        for removal in StoreRemoval.allCases {
            let label = "store \(removal.rawValue) mid-refresh"
            let scene = try Scene()
            defer { scene.fake.stop() }
            let key = "replaced-\(removal.rawValue)"
            let agent = try harness.agent(
                ["--store", scene.store, "--request-timeout", "10", "--log-level", "notice"], fake: scene.fake)
            defer { agent.kill() }
            guard scene.seed(key, in: agent), let spent = await scene.row(key) else {
                report.fail("\(label): could not seed the key")
                continue
            }
            guard let id = scene.refreshInFlight(key, in: agent, delay: .seconds(1)) else {
                report.fail("\(label): the refresh never reached Smartcar")
                continue
            }
            let moved = scene.folder.file("moved-away.sqlite3")
            let files = FileManager.default
            do {
                switch removal {
                case .deleted: try files.removeItem(atPath: scene.store)
                case .movedAway:
                    // With its write-ahead log, as `mv tokens.sqlite3* elsewhere/` would.
                    for suffix in ["", "-wal", "-shm"] where files.fileExists(atPath: scene.store + suffix) {
                        try files.moveItem(atPath: scene.store + suffix, toPath: moved + suffix)
                    }
                }
            } catch {
                report.fail("\(label): could not remove the store: \(error)")
                continue
            }
            let reply = agent.response(id, timeout: .seconds(30))
            outcomes[reply?.outcome ?? "no answer", default: 0] += 1
            report.check(
                reply?.errorKind == "storageError",
                "\(label): expected storageError (no store to write to), got \(reply.map(\.compactText) ?? "no answer")"
            )
            // Nothing was written into the file that lost its name: it still holds the spent generation.
            if removal == .movedAway {
                let left = await scene.row(key, in: moved)
                report.check(
                    left?.generation == spent.generation && left?.refreshToken == spent.refreshToken,
                    "\(label): the agent wrote into the moved-away file (generation \(left.map { String($0.generation) } ?? "none"), was \(spent.generation))"
                )
            }
            let orphans = ((try? files.contentsOfDirectory(atPath: scene.folder.path)) ?? [])
                .filter { $0.hasPrefix("tokens.sqlite3.orphaned-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") }
            report.check(orphans.count == 1, "\(label): \(orphans.count) orphaned copies, expected 1")
            if let orphan = orphans.first.map(scene.folder.file) {
                let mode = ((try? files.attributesOfItem(atPath: orphan))?[.posixPermissions] as? Int) ?? -1
                report.check(mode == 0o600, "\(label): the orphaned copy has mode \(String(mode, radix: 8))")
                report.check(
                    await scene.row(key, in: orphan) != nil, "\(label): the orphaned copy lacks the key's tokens")
            }
            // No store at the path: calls that touch the store answer storageError, and no file appears.
            let stored = agent.call(
                "no-store", "storeToken",
                [
                    "key": "while-missing", "accessToken": "a", "refreshToken": "r",
                    "expiresAt": "2030-01-01T00:00:00Z",
                ])
            report.check(
                stored?.errorKind == "storageError",
                "\(label): storeToken with no store answered \(stored.map(\.compactText) ?? "nothing")")
            report.check(
                !files.fileExists(atPath: scene.store), "\(label): the agent created a store file by itself")

            // A valid store put at the path (made by another agent elsewhere) is used from then on.
            let replacement = scene.folder.file("replacement.sqlite3")
            let maker = try harness.agent(["--store", replacement], fake: scene.fake)
            report.check(scene.seed("in-replacement", in: maker), "\(label): could not make the replacement")
            maker.closeInput()
            _ = maker.exitStatus()
            // The whole store (its write-ahead log holds the latest rows), the main file last.
            for suffix in ["-wal", "-shm", ""] where files.fileExists(atPath: replacement + suffix) {
                try? files.removeItem(atPath: scene.store + suffix)
                try files.moveItem(atPath: replacement + suffix, toPath: scene.store + suffix)
            }
            // The agent looks at the path at most every 100 ms before a read: let that pass.
            usleep(200_000)
            let served = agent.call("replacement-get", "getToken", ["key": "in-replacement", "minValidity": 0])
            report.check(
                served?.isSuccess == true,
                "\(label): the replacement store is not used: \(served.map(\.compactText) ?? "no answer")")
            let minted = scene.fake.mintTokens(userID: "after")
            let after = agent.call(
                "replacement-store", "storeToken",
                [
                    "key": "after", "accessToken": .string(minted.accessToken),
                    "refreshToken": .string(minted.refreshToken), "expiresAt": "2030-01-01T00:00:00Z",
                ])
            report.check(after?.isSuccess == true, "\(label): storeToken into the replacement failed")
            report.check(
                await scene.row("after") != nil,
                "\(label): a write after the replacement is not in the file at the path")
            agent.closeInput()
            let status = agent.exitStatus(within: .seconds(45))
            report.check(
                status == 0 || status == 3, "\(label): the agent exited with \(status.map(String.init) ?? "nothing")")
            // The rotated tokens of the refresh could not be stored where they belong: said, never silent.
            let loud = agent.stderr.split(separator: "\n").contains { line in
                line.contains(key) && (line.contains("error") || line.contains("warning"))
            }
            report.check(loud, "\(label): no error or warning line names \(key), whose rotated tokens were not stored")
        }
        report.counts("store removed mid-refresh answered", outcomes)
    }
}
