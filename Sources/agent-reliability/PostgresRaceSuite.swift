import AgentTestSupport
import FakeSmartcar
import Foundation
import Synchronization
import WireFormats

/// The rotation race across hosts (issue 14, must-show 2): `RaceSuite`'s drivers on 8 agents, 4 on each of two
/// simulated hosts, sharing 100 keys through one PostgreSQL database over the hosts' links, while the database
/// restarts (`pg_ctl restart -m fast`) and one agent connection at a time is killed (`pg_terminate_backend`).
/// Every refresh token must still be spent once: 0 `invalid_grant` at the fake, 0 `reauthRequired` at the
/// clients, every key's stored refresh token the live one at the end (none lost). While the database is down a
/// caller may get `storageError` (counted apart); a hang or any other error fails.
///
/// Short mode (CI): 10 s, one restart, a connection killed every 3 s. Long mode: 60 s, a restart every 10 s.
@MainActor
struct PostgresRaceSuite {
    let harness: Harness

    nonisolated static let agentsPerHost = 4
    nonisolated static let killEvery: Duration = .seconds(3)

    /// What the disturbing thread did.
    struct Disturbances: Sendable {
        var restarts = 0
        /// How long each `pg_ctl restart` took (the database was down for about that long).
        var restartTook: [Duration] = []
        var killedConnections = 0
        var failures: [String] = []
    }

    func run(_ report: Report) async throws {
        guard SimulatedHost.isAvailable else {
            report.fail(
                "simulated hosts are not available here (they need root, `ip` and `unshare`): the race across hosts did not run"
            )
            return
        }
        let seconds = harness.long ? 60 : 10
        let hosts = [try SimulatedHost(hostName: "race-host-a"), try SimulatedHost(hostName: "race-host-b")]
        let cluster = try PostgresCluster(listenAddresses: ["127.0.0.1"] + hosts.map(\.hostSideAddress))
        let database = URL(string: try cluster.createDatabase("race"))!.lastPathComponent

        let upstream = UpstreamTally()
        var options = FakeSmartcar.Options()
        options.accessTokenLifetime = RaceSuite.accessTokenLifetime
        options.refreshReuse = .rejected
        options.log = upstream.sink
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        for host in hosts { try host.expose(fake) }

        let start = { (host: SimulatedHost) in
            try host.start(
                binary: harness.agentBinary,
                arguments: [
                    "--store", cluster.uri(database: database, host: host.hostSideAddress), "--log-level", "warning",
                ],
                environment: fake.agentEnvironment)
        }
        let seeding = try start(hosts[0])
        for key in RaceSuite.keys {
            guard seeding.storeGrant(key, fake.mintTokens(userID: key)) else {
                report.fail("seeding \(key) failed: \(seeding.keepStderr())")
                return
            }
        }
        seeding.closeInput()
        _ = seeding.exitStatus()

        let agents = try hosts.flatMap { host in try (0..<Self.agentsPerHost).map { _ in try start(host) } }
        defer { for agent in agents { agent.kill() } }
        for agent in agents {
            guard agent.call("init", "initialize", ["notifications": true])?.isSuccess == true else {
                report.fail("initialize failed: \(agent.keepStderr())")
                return
            }
        }

        let deadline = ContinuousClock.now + .seconds(seconds)
        let disturbances = Mutex(Disturbances())
        let restartEvery: Duration = harness.long ? .seconds(10) : .seconds(5)
        let drives = RaceSuite.driveAll(agents, until: deadline, seed: harness.seed ^ 0x9057) {
            disturbances.withLock { $0 = Self.disturb(cluster, until: deadline, restartEvery: restartEvery) }
        }

        // Once the faults are over, every agent serves again by itself (it reconnected), within a generous deadline.
        var slowestRecovery: Duration = .zero
        for (index, agent) in agents.enumerated() {
            switch Self.recovery(of: agent, number: index) {
            case .success(let took): slowestRecovery = max(slowestRecovery, took)
            case .failure(let failure):
                report.fail("agent \(index) does not serve again after the faults: \(failure) \(agent.keepStderr())")
            }
        }

        let disturbed = disturbances.withLock { $0 }
        disturbed.failures.forEach(report.fail)
        let (outcomes, reauth) = RaceSuite.endRace(
            agents, drives, upstream: upstream, allowedErrors: ["storageError"], report)
        let answered = drives.map(\.answered).reduce(0, +)
        let invalidGrant = upstream.count("token", "400")
        let refreshes = upstream.count("token", "200")
        let storageErrors = outcomes["storageError"] ?? 0
        report.check((outcomes["result"] ?? 0) > 0, "no getToken succeeded")

        // Nothing lost: each key's stored refresh token is the live one, so the token of every rotation that
        // was committed is the one the store holds, and no rotation's tokens were dropped.
        let rows = try PostgreSQLStoreInspector(
            uri: cluster.uri(database: database), clientSecret: FakeSmartcar.Options().clientSecret
        ).rows()
        let lost = RaceSuite.keys.filter { key in
            rows[ModelKey(key)].map { $0.needsReauth || !fake.isLive(refreshToken: $0.refreshToken) } ?? true
        }
        report.check(lost.isEmpty, "\(lost.count) keys lost their refresh token, e.g. \(lost.prefix(3))")
        let perKey = Self.refreshesPerKey(fake)

        report.figure(
            "hosts × agents × keys",
            "\(hosts.count) × \(Self.agentsPerHost) × \(RaceSuite.keys.count), one PostgreSQL database over the hosts' links"
        )
        report.figure(
            "race duration",
            "\(seconds) s, \(RaceSuite.window) requests in flight per agent, access tokens live \(RaceSuite.accessTokenLifetime) s"
        )
        report.figure(
            "database restarts",
            "\(disturbed.restarts), each down for "
                + disturbed.restartTook.map { String(format: "%.1f s", FaultSuite.seconds($0)) }.joined(separator: ", ")
        )
        report.figure("agent connections killed", disturbed.killedConnections)
        report.figure("getToken answered", "\(answered) (\(answered / max(1, seconds)) per second)")
        report.counts("outcomes", outcomes)
        report.figure("storageError (database down)", storageErrors)
        var failuresBySecondLeft: [Int: Int] = [:]
        for drive in drives { failuresBySecondLeft.merge(drive.failuresBySecondLeft, uniquingKeysWith: +) }
        report.figure(
            "failed answers per second",
            (0..<seconds).map { "\(failuresBySecondLeft[seconds - 1 - $0] ?? 0)" }.joined(separator: " "))
        report.figure("refreshes done", "\(refreshes) (\(refreshes / max(1, seconds)) per second)")
        report.figure(
            "refreshes per key",
            "min \(perKey.first ?? 0), median \(perKey.isEmpty ? 0 : perKey[perKey.count / 2]), max \(perKey.last ?? 0)"
        )
        report.figure("invalid_grant at the fake", invalidGrant)
        report.figure("reauthRequired at clients", reauth)
        report.figure("tokens lost", lost.count)
        report.figure(
            "slowest getToken", String(format: "%.2f s", FaultSuite.seconds(drives.map(\.slowest).max() ?? .zero)))
        report.figure(
            "serving again after the race", String(format: "within %.2f s", FaultSuite.seconds(slowestRecovery)))
    }

    struct NotRecovered: Error, CustomStringConvertible {
        var description: String
    }

    /// How long until `agent` answers a `getToken` with a token, asking again 100 ms after each `storageError` (a
    /// client's retry); fails with the last answer if it still fails after 60 s or answers anything else.
    nonisolated static func recovery(of agent: AgentProcess, number: Int) -> Result<Duration, NotRecovered> {
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            let id = JSONValue.string("recovery-\(number)-\(attempt)")
            let answer = agent.call(
                id, "getToken",
                ["key": .string(RaceSuite.keys[number]), "minValidity": .int(Int64(RaceSuite.minValidity))],
                timeout: .seconds(60))
            if answer?.isSuccess == true { return .success(.now - started) }
            guard answer?.errorKind == "storageError", ContinuousClock.now - started < .seconds(60) else {
                let text = answer.map { String($0.compactText.prefix(300)) } ?? "nothing"
                return .failure(NotRecovered(description: "answered \(text)"))
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Until `deadline`: kills one agent connection every `killEvery`, and restarts the database every
    /// `restartEvery`.
    nonisolated static func disturb(
        _ cluster: PostgresCluster, until deadline: ContinuousClock.Instant, restartEvery: Duration
    ) -> Disturbances {
        var done = Disturbances()
        let started = ContinuousClock.now
        var nextKill = started + killEvery
        var nextRestart = started + restartEvery
        while true {
            let next = min(nextKill, nextRestart)
            guard next < deadline else { return done }
            let wait = max(.zero, next - .now).components
            Thread.sleep(forTimeInterval: Double(wait.seconds) + Double(wait.attoseconds) * 1e-18)
            do {
                if next == nextRestart {
                    let restartStarted = ContinuousClock.now
                    try cluster.restart()
                    done.restarts += 1
                    done.restartTook.append(.now - restartStarted)
                    nextRestart += restartEvery
                } else {
                    let killed = try cluster.psql(
                        "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity "
                            + "WHERE application_name = 'smartcar-auth-agent' ORDER BY random() LIMIT 1) AS one")
                    done.killedConnections += Int(killed) ?? 0
                    nextKill += killEvery
                }
            } catch {
                done.failures.append("the disturbance failed: \(error)")
                return done
            }
        }
    }

    /// How many refreshes reached the fake for each key (the user its tokens were minted for), sorted.
    nonisolated static func refreshesPerKey(_ fake: FakeSmartcar) -> [Int] {
        var counts = Dictionary(uniqueKeysWithValues: RaceSuite.keys.map { ($0, 0) })
        for request in fake.requests where request.form["grant_type"] == "refresh_token" {
            if let key = request.form["refresh_token"].flatMap(fake.owner(ofRefreshToken:)) {
                counts[key, default: 0] += 1
            }
        }
        return counts.values.sorted()
    }
}
