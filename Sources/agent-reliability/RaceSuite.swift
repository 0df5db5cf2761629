import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Synchronization
import WireFormats

/// Rotation race: 8 agent processes on one store hammer 100 keys with `getToken` (each keeping a few
/// requests in flight, on random keys) while access tokens live 3 seconds, against a fake that rejects any
/// reuse of a refresh token. Every refresh token must be spent exactly once across the processes: zero
/// `invalid_grant` at the fake, zero `reauthRequired` at the clients, every answer a token valid for the
/// asked `minValidity`, and every key still live at the end.
@MainActor
struct RaceSuite {
    let harness: Harness

    nonisolated static let processes = 8
    nonisolated static let keys = (0..<100).map { "race-\($0)" }
    nonisolated static let accessTokenLifetime = 3
    nonisolated static let minValidity = 1
    /// Requests each process keeps in flight.
    nonisolated static let window = 4

    /// What one process's driver saw.
    struct Drive: Sendable {
        var answered = 0
        var outcomes: [String: Int] = [:]
        var reauthNotifications = 0
        /// Tokens that had less than `minValidity` left already when the request was sent (stale).
        var stale = 0
        /// Answers whose `expiresIn` is below `minValidity` (rounded down at answer time, after the check).
        var roundedBelow = 0
        var slowest: Duration = .zero
        var failure: String?
        /// Refreshes whose 3 s token had less than `minValidity` left once stored (a busy machine), answered
        /// `upstreamError` naming both, as Protocol/README.md says: the token is never handed out short.
        var refusedShort = 0
        /// The first answer that was not a token, for the failure message.
        var firstError: String?
        /// Answers that were not a token, by whole seconds left before the deadline when they came (a timeline).
        var failuresBySecondLeft: [Int: Int] = [:]
    }

    func run(_ report: Report) async throws {
        let seconds = harness.long ? 60 : 10
        let upstream = UpstreamTally()
        var options = FakeSmartcar.Options()
        options.accessTokenLifetime = Self.accessTokenLifetime
        options.refreshReuse = .rejected
        options.log = upstream.sink
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        let folder = try TemporaryFolder("agent-reliability")
        let store = folder.file("tokens.sqlite3")

        let seeding = try harness.agent(["--store", store], fake: fake)
        for key in Self.keys {
            let minted = fake.mintTokens(userID: key)
            guard
                seeding.call(
                    .string(key), "storeToken",
                    [
                        "key": .string(key), "accessToken": .string(minted.accessToken),
                        "refreshToken": .string(minted.refreshToken), "expiresAt": "2020-01-01T00:00:00Z",
                    ])?.isSuccess == true
            else {
                report.fail("seeding \(key) failed")
                return
            }
        }
        seeding.closeInput()
        _ = seeding.exitStatus()

        let agents = try (0..<Self.processes).map { _ in
            try harness.agent(["--store", store, "--log-level", "warning"], fake: fake)
        }
        for agent in agents {
            guard agent.call("init", "initialize", ["notifications": true])?.isSuccess == true else {
                report.fail("initialize failed: \(agent.keepStderr())"); return
            }
        }
        let drives = Self.driveAll(
            agents, until: ContinuousClock.now + .seconds(seconds), seed: harness.seed ^ 0x2ACE)
        let (outcomes, reauth) = Self.endRace(agents, drives, upstream: upstream, report)
        let answered = drives.map(\.answered).reduce(0, +)
        let invalidGrant = upstream.count("token", "400")
        let refreshes = upstream.count("token", "200")
        let stale = drives.map(\.stale).reduce(0, +)
        let roundedBelow = drives.map(\.roundedBelow).reduce(0, +)
        report.check(answered > 0, "nothing was answered")

        // Every key's refresh token in the store is the live one.
        let rows = try await Harness.storedRows(store)
        let dead = Self.keys.filter { key in
            rows[key].map { $0.needsReauth || !fake.isLive(refreshToken: $0.refreshToken) } ?? true
        }
        report.check(dead.isEmpty, "\(dead.count) keys lost their refresh token, e.g. \(dead.prefix(3))")

        report.figure(
            "processes × keys",
            "\(Self.processes) × \(Self.keys.count), one store, access tokens live \(Self.accessTokenLifetime) s, reuse rejected"
        )
        report.figure("race duration", "\(seconds) s, \(Self.window) requests in flight per process")
        report.figure("getToken answered", "\(answered) (\(answered / max(1, seconds)) per second)")
        report.counts("outcomes", outcomes)
        report.figure("refreshes done", "\(refreshes) (\(refreshes / max(1, seconds)) per second)")
        report.figure("invalid_grant at the fake", invalidGrant)
        report.figure("reauthRequired at clients", reauth)
        report.figure("stale tokens handed out", stale)
        report.figure(
            "refused as too short", "\(drives.map(\.refusedShort).reduce(0, +)) (under minValidity once stored)")
        report.figure(
            "expiresIn below minValidity", "\(roundedBelow) (valid when looked up, rounded down when answered)")
        report.figure(
            "slowest getToken", String(format: "%.2f s", FaultSuite.seconds(drives.map(\.slowest).max() ?? .zero)))
        report.figure("keys live at the end", "\(Self.keys.count - dead.count) of \(Self.keys.count)")
        try await equivalentKeys(report)
    }

    /// The end of a race: closes every agent's input, checks each exits 0 having written nothing but protocol
    /// messages, and checks the drives: no failure, no `invalid_grant` at the fake, no `reauthRequired`, no stale
    /// token, and no error but `allowedErrors`. Answers the outcomes summed over the drives, and the
    /// `reauthRequired` answers and notifications.
    static func endRace(
        _ agents: [AgentProcess], _ drives: [Drive], upstream: UpstreamTally, allowedErrors: Set<String> = [],
        _ report: Report
    ) -> (outcomes: [String: Int], reauth: Int) {
        for agent in agents { agent.closeInput() }
        for (index, agent) in agents.enumerated() {
            let status = agent.exitStatus()
            report.check(
                status == 0,
                "agent \(index) exited with \(status.map(String.init) ?? "nothing"): \(agent.keepStderr())")
            report.check(agent.inbox.violations.isEmpty, "agent \(index): non-protocol output on stdout")
        }
        var outcomes: [String: Int] = [:]
        for drive in drives {
            if let failure = drive.failure { report.fail(failure) }
            outcomes.merge(drive.outcomes, uniquingKeysWith: +)
        }
        let reauth = (outcomes["reauthRequired"] ?? 0) + drives.map(\.reauthNotifications).reduce(0, +)
        let invalidGrant = upstream.count("token", "400")
        let stale = drives.map(\.stale).reduce(0, +)
        report.check(
            invalidGrant == 0,
            "Smartcar refused \(invalidGrant) refreshes (invalid_grant: a refresh token was spent twice)")
        report.check(reauth == 0, "\(reauth) reauthRequired answers or notifications")
        report.check(
            outcomes.keys.allSatisfy { $0 == "result" || allowedErrors.contains($0) },
            "a getToken failed: \(outcomes), e.g. \(drives.compactMap(\.firstError).first ?? "")")
        report.check(
            stale == 0,
            "\(stale) tokens handed out with less than minValidity (\(Self.minValidity) s) left when asked for")
        return (outcomes, reauth)
    }

    /// Keeps `window` getTokens on random keys in flight until the deadline, then collects the last answers.
    /// Drives every agent until `deadline`, each on a thread of its own (a driver blocks on its agent's answers: not
    /// on the cooperative pool), while `alongside` runs on one more; returns when all are done.
    nonisolated static func driveAll(
        _ agents: [AgentProcess], until deadline: ContinuousClock.Instant, seed: UInt64,
        alongside: (@Sendable () -> Void)? = nil
    ) -> [Drive] {
        let results = Mutex<[Drive]>([])
        let finished = DispatchGroup()
        var random = SeededGenerator(seed: seed)
        var work: [@Sendable () -> Void] = agents.map { agent in
            let seed = random.next()
            return { results.withLock { $0.append(drive(agent, until: deadline, seed: seed)) } }
        }
        if let alongside { work.append(alongside) }
        for body in work {
            finished.enter()
            Thread {
                body()
                finished.leave()
            }.start()
        }
        finished.wait()
        return results.withLock { $0 }
    }

    nonisolated static func drive(_ agent: AgentProcess, until deadline: ContinuousClock.Instant, seed: UInt64) -> Drive
    {
        var random = SeededGenerator(seed: seed)
        var drive = Drive()
        var inFlight: [JSONValue: (at: ContinuousClock.Instant, wall: Date)] = [:]
        var next = 0
        var cursor = 0
        while ContinuousClock.now < deadline || !inFlight.isEmpty {
            while inFlight.count < window && ContinuousClock.now < deadline {
                next += 1
                let id = JSONValue.int(Int64(next))
                inFlight[id] = (.now, Date())
                agent.request(
                    id, "getToken",
                    ["key": .string(keys.randomElement(using: &random)!), "minValidity": .int(Int64(minValidity))])
            }
            guard agent.waitUntil(.now + .seconds(30), { $0.messages.count > cursor }) else {
                drive.failure =
                    "a process answered nothing for 30 s with \(inFlight.count) requests in flight: \(agent.keepStderr())"
                return drive
            }
            let new = agent.inbox.messages[cursor...]
            cursor += new.count
            for message in new {
                if let method = message["method"]?.stringValue {
                    if method == "reauthRequired" { drive.reauthNotifications += 1 }
                    continue
                }
                guard let id = message["id"], let sent = inFlight.removeValue(forKey: id) else { continue }
                drive.answered += 1
                drive.slowest = max(drive.slowest, .now - sent.at)
                if message.errorKind == "upstreamError", message["error"]?["data"]?["minValidity"] != nil {
                    drive.refusedShort += 1
                    continue
                }
                drive.outcomes[message.outcome, default: 0] += 1
                guard let result = message["result"] else {
                    if drive.firstError == nil { drive.firstError = String(message.compactText.prefix(400)) }
                    drive.failuresBySecondLeft[Int(max(0, (deadline - .now).components.seconds)), default: 0] += 1
                    continue
                }
                if let left = result["expiresIn"]?.intValue, left < minValidity { drive.roundedBelow += 1 }
                // The agent checks validity between the request and its answer; `expiresAt` is in whole seconds.
                let expiresAt =
                    result["expiresAt"]?.stringValue.flatMap { try? Date.ISO8601FormatStyle().parse($0) }
                    ?? .distantPast
                if expiresAt.addingTimeInterval(1) <= sent.wall.addingTimeInterval(TimeInterval(minValidity)) {
                    drive.stale += 1
                }
            }
        }
        return drive
    }
}
