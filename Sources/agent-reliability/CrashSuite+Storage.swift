import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import TokenStore
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The store failing while a refresh is at Smartcar (issue 12, class 4): locked by another connection or
/// refusing writes, then back; or the file deleted or moved away under the agent. Against a fake that
/// rejects any reuse of a refresh token, so a rotated token the agent loses shows as a dead key.
extension CrashSuite {
    enum StorageFailure: String, CaseIterable {
        /// Another connection holds the write lock; then releases it.
        case locked
        /// Another connection makes writes of new tokens fail; then allows them.
        case refusingWrites
        /// Locked, and the agent's input ends while it is: the agent keeps writing before it exits.
        case lockedAtEndOfInput
    }

    /// A store, a fake and a seeded key for one scenario.
    struct Scene {
        let fake: FakeSmartcar
        let folder: TemporaryFolder
        var store: String { folder.file("tokens.sqlite3") }

        init() throws {
            var options = FakeSmartcar.Options()
            options.refreshReuse = .rejected
            fake = try FakeSmartcar(options: options)
            folder = try TemporaryFolder("agent-reliability")
        }

        /// Stores a fresh grant of `key` through `agent`; false if that failed.
        func seed(_ key: String, in agent: AgentProcess) -> Bool {
            agent.storeGrant(key, fake.mintTokens(userID: key))
        }

        /// Sends a forced refresh of `key` whose answer Smartcar holds back `delay`, and returns once Smartcar
        /// has the request (or nil after 30 s): the disturbance that follows lands while it is in flight.
        func refreshInFlight(_ key: String, in agent: AgentProcess, delay: Duration) -> JSONValue? {
            fake.inject(.delay(delay), on: .token)
            let before = fake.count(.token)
            let id = agent.request(.string("refresh-\(key)"), "getToken", ["key": .string(key), "forceRefresh": true])
            // Polling the fake's count, with a deadline: the request has reached Smartcar.
            let deadline = ContinuousClock.now + .seconds(30)
            while fake.count(.token) == before {
                guard ContinuousClock.now < deadline else { return nil }
                usleep(1000)
            }
            return id
        }

        /// The key's row as another agent would read it; nil if the store does not open or lacks it.
        func row(_ key: String, in path: String? = nil) async -> StoredToken? {
            (try? await Harness.storedRows(path ?? store))?[key]
        }

        /// Waits (polling the store, with a deadline) until the key's stored refresh token is live at the fake
        /// and differs from `spent`: the rotated one was written.
        func waitForRotatedRow(_ key: String, spent: String, within seconds: Int) async -> StoredToken? {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < deadline {
                if let row = await row(key), row.refreshToken != spent, fake.isLive(refreshToken: row.refreshToken) {
                    return row
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return nil
        }
    }

    func storageFailures(_ report: Report) async throws {
        var outcomes: [String: Int] = [:]
        for failure in StorageFailure.allCases {
            let label = "store \(failure.rawValue) mid-refresh"
            let scene = try Scene()
            defer { scene.fake.stop() }
            let key = "storage-\(failure.rawValue)"
            let arguments = ["--store", scene.store, "--store-busy-timeout", "0.2", "--request-timeout", "10"]
            let agent = try harness.agent(arguments, fake: scene.fake)
            defer { agent.kill() }
            guard scene.seed(key, in: agent), let spent = await scene.row(key)?.refreshToken else {
                report.fail("\(label): could not seed the key")
                continue
            }
            let saboteur = try StoreSaboteur(scene.store)
            defer { saboteur.close() }
            guard let id = scene.refreshInFlight(key, in: agent, delay: .milliseconds(1500)) else {
                report.fail("\(label): the refresh never reached Smartcar")
                continue
            }
            let sabotaged = failure == .refusingWrites ? saboteur.refuseTokenWrites() : saboteur.lock()
            guard report.check(sabotaged, "\(label): the saboteur could not get at the store") else { continue }
            let reply = agent.response(id, timeout: .seconds(30))
            outcomes[reply?.outcome ?? "no answer", default: 0] += 1
            report.check(
                reply?.errorKind == "storageError",
                "\(label): expected storageError, got \(reply.map(\.compactText) ?? "no answer")")
            report.check(agent.call("ping", "ping")?.isSuccess == true, "\(label): the agent is down")

            if failure == .lockedAtEndOfInput {
                // The input ends while the store is locked: the agent keeps writing (up to 30 s) before it
                // exits. The lock goes a moment later (not a synchronisation: any order must keep the token).
                agent.closeInput()
                usleep(300_000)
                report.check(saboteur.unlock(), "\(label): the saboteur could not unlock")
                let status = agent.exitStatus(within: .seconds(45))
                report.check(
                    status == 0,
                    "\(label): the agent exited with \(status.map(String.init) ?? "nothing") (0 expected once the token is written)"
                )
            } else {
                report.check(
                    failure == .refusingWrites ? saboteur.allowWrites() : saboteur.unlock(),
                    "\(label): the saboteur could not give the store back")
                // Written in the background, with nothing asked of the agent; then it dies without a word.
                let written = await scene.waitForRotatedRow(key, spent: spent, within: 30)
                report.check(
                    written != nil,
                    "\(label): the rotated token was not written within 30 s of the store coming back, with nothing asked"
                )
                agent.kill()
                _ = agent.exitStatus()
            }
            // A restarted agent serves the key, and Smartcar honours what the store holds.
            let restarted = try harness.agent(["--store", scene.store, "--strict-store"], fake: scene.fake)
            defer { restarted.kill() }
            for (index, force) in [false, true].enumerated() {
                let served = restarted.call(
                    .string("after-\(index)"), "getToken",
                    ["key": .string(key), "minValidity": 0, "forceRefresh": .bool(force)])
                report.check(
                    served?.isSuccess == true,
                    "\(label): a restarted agent's getToken\(force ? " forceRefresh" : "") answered \(served.map(\.compactText) ?? "nothing")"
                )
            }
            restarted.closeInput()
            report.check(restarted.exitStatus() == 0, "\(label): the restarted agent did not exit cleanly")
        }
        report.counts("storage failures mid-refresh answered", outcomes)
    }
}
