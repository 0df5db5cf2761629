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

/// Crash: SIGKILL at random instants while refreshes, code exchanges and `storeToken` writes are in flight,
/// then a look at the store. Each key is driven by one chain of requests (the next is sent when the previous
/// is answered), so the tokens the agent acknowledged for a key are ordered and each new access token is one
/// generation. After every kill: the store opens (strictly), every key holds the last acknowledged
/// generation or exactly one more (a write that committed before its answer got out), and the stored refresh
/// token is live at the fake. At the end every key still refreshes, and no refresh was ever refused.
///
/// The fake allows Smartcar's one-minute reuse grace: a kill between Smartcar rotating the refresh token and
/// the agent committing the new one leaves the old token stored, which only the grace rescues (counted).
@MainActor
struct CrashSuite {
    let harness: Harness

    static let keys = (0..<6).map { "crash-\($0)" }

    private enum Operation: CaseIterable {
        case refresh, cachedGetToken, storeToken, exchangeCode
    }

    /// One key's chain during a round.
    private struct Chain {
        var generation: Int64
        var accessToken: String
        /// Access tokens acknowledged this round (and the one stored when it began).
        var seen: Set<String>
        var inFlight: (id: JSONValue, operation: Operation, accessToken: String?)?
    }

    private struct Tally {
        var kills = 0
        var inFlightAtKill: [String: Int] = [:]
        var acknowledged = 0
        var committedBeforeAnswer = 0
        var rescuedByGrace = 0
        var lost = 0
        var operations: [String: Int] = [:]
    }

    func run(_ report: Report) async throws {
        let rounds = harness.long ? 1000 : 100
        var random = SeededGenerator(seed: harness.seed ^ 0xC4A5_11ED)
        let upstream = UpstreamTally()
        var options = FakeSmartcar.Options()
        options.refreshReuse = .grace(60)
        options.log = upstream.sink
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        let folder = try TemporaryFolder("agent-reliability")
        let store = folder.file("state/tokens.sqlite3")

        let seeding = try harness.agent(["--store", store], fake: fake)
        for key in Self.keys {
            let minted = fake.mintTokens(userID: key)
            let reply = seeding.call(
                .string(key), "storeToken",
                [
                    "key": .string(key), "accessToken": .string(minted.accessToken),
                    "refreshToken": .string(minted.refreshToken), "expiresAt": "2020-01-01T00:00:00Z",
                ])
            guard reply?.isSuccess == true else {
                report.fail("seeding \(key): \(reply.map(\.compactText) ?? "no answer")")
                return
            }
        }
        seeding.closeInput()
        _ = seeding.exitStatus()

        var tally = Tally()
        for round in 1...rounds where report.passed {
            try await self.round(round, store: store, fake: fake, random: &random, tally: &tally, report: report)
        }

        // Every key still refreshes, with the refresh token the store kept.
        let last = try harness.agent(["--store", store, "--strict-store"], fake: fake)
        for key in Self.keys {
            let reply = last.call(.string(key), "getToken", ["key": .string(key), "forceRefresh": true])
            let shown = reply.map(\.compactText) ?? "no answer"
            report.check(
                reply?.isSuccess == true,
                "after \(tally.kills) kills, key \(key) no longer refreshes: \(shown)")
        }
        last.closeInput()
        report.check(last.exitStatus() == 0, "the last agent did not exit cleanly")

        let refused = upstream.count("token", "400")
        report.check(
            refused == 0,
            "Smartcar refused \(refused) token requests (invalid_grant: a refresh token was reused or lost)")
        try await signalsDuringRefresh(report)
        try await storageFailures(report)
        try await storeReplacements(report)
        report.figure("kills survived", tally.kills)
        report.counts("in flight at the kills", tally.inFlightAtKill)
        report.counts("operations acknowledged", tally.operations)
        report.figure("tokens checked", "\(tally.acknowledged) acknowledged, \(Self.keys.count) keys after every kill")
        report.figure("tokens lost", tally.lost)
        report.figure("committed, kill before answer", tally.committedBeforeAnswer)
        report.figure(
            "rescued by the reuse grace", "\(tally.rescuedByGrace) (kill between Smartcar's rotation and the commit)")
        report.figure("upstream refreshes and exchanges", upstream.count("token", "200"))
        report.figure("invalid_grant at the fake", refused)
    }

    private func round(
        _ round: Int, store: String, fake: FakeSmartcar, random: inout SeededGenerator, tally: inout Tally,
        report: Report
    ) async throws {
        let before = try await Harness.storedRows(store)
        var chains: [String: Chain] = [:]
        for key in Self.keys {
            guard let row = before[key] else {
                report.fail("round \(round): key \(key) is missing from the store"); return
            }
            chains[key] = Chain(generation: row.generation, accessToken: row.accessToken, seen: [row.accessToken])
        }
        let agent = try harness.agent(["--store", store, "--strict-store"], fake: fake)
        var nextID = 0
        func start(_ key: String, _ random: inout SeededGenerator) {
            nextID += 1
            let id = JSONValue.int(Int64(nextID))
            let operation = Operation.allCases.randomElement(using: &random)!
            var minted: String?
            switch operation {
            case .refresh:
                agent.request(id, "getToken", ["key": .string(key), "forceRefresh": true])
            case .cachedGetToken:
                agent.request(id, "getToken", ["key": .string(key), "minValidity": 0])
            case .storeToken:
                let pair = fake.mintTokens(userID: key)
                minted = pair.accessToken
                // Sometimes already expired, so that the next getToken refreshes.
                let expiresAt = Date().addingTimeInterval(random.chance(0.5) ? 3600 : -60).formatted(.iso8601)
                agent.request(
                    id, "storeToken",
                    [
                        "key": .string(key), "accessToken": .string(pair.accessToken),
                        "refreshToken": .string(pair.refreshToken), "expiresAt": .string(expiresAt),
                    ])
            case .exchangeCode:
                let code = fake.issueCode(redirectURI: FakeSmartcar.redirectURI, userID: key)
                agent.request(id, "exchangeCode", ["code": .string(code), "key": .string(key)])
            }
            chains[key]!.inFlight = (id, operation, minted)
        }
        for key in Self.keys { start(key, &random) }

        // Let it get somewhere (a random number of answers), then kill it at a random instant after that.
        let target = Int.random(in: 0...(Self.keys.count * 4), using: &random)
        var cursor = 0
        var answered = 0
        while answered < target {
            guard agent.waitUntil(.now + .seconds(30), { $0.messages.count > cursor }) else {
                report.fail(
                    "round \(round): no answer within 30 s (\(answered) of \(target) so far); stderr: \(agent.keepStderr())"
                )
                agent.kill()
                return
            }
            let new = agent.inbox.messages[cursor...]
            cursor += new.count
            for message in new {
                guard let key = acknowledge(message, chains: &chains, round: round, tally: &tally, report: report)
                else { continue }
                answered += 1
                start(key, &random)
            }
        }
        // A random instant (not a synchronisation): whatever is in flight then is cut off.
        usleep(UInt32.random(in: 0...4000, using: &random))
        agent.kill()
        guard agent.exitStatus(within: .seconds(30)) != nil else {
            report.fail("round \(round): the killed agent did not go away")
            return
        }
        tally.kills += 1
        // Answers written before the kill count as acknowledged too.
        for message in agent.inbox.messages[cursor...] {
            _ = acknowledge(message, chains: &chains, round: round, tally: &tally, report: report)
        }
        report.check(agent.inbox.violations.isEmpty, "round \(round): non-protocol output on stdout")
        for case let inFlight? in chains.values.map(\.inFlight) {
            tally.inFlightAtKill["\(inFlight.operation)", default: 0] += 1
        }

        // The refresh tokens Smartcar has seen used (for the grace count), then a clean slate for the next round.
        let used = Set(fake.requests.filter { $0.endpoint == .token }.compactMap { $0.form["refresh_token"] })
        fake.reset()

        let after: [String: StoredToken]
        do {
            after = try await Harness.storedRows(store)
        } catch {
            report.fail("round \(round): the store does not open after the kill: \(error)")
            return
        }
        for key in Self.keys {
            let chain = chains[key]!
            guard let row = after[key] else { report.fail("round \(round): key \(key) vanished"); continue }
            if row.generation == chain.generation {
                if !report.check(
                    row.accessToken == chain.accessToken,
                    "round \(round): key \(key) at generation \(row.generation) holds another access token than the one acknowledged"
                ) {
                    tally.lost += 1
                }
            } else if row.generation == chain.generation + 1, let inFlight = chain.inFlight {
                // A write that committed before its answer got out: a new token, never one handed out before.
                report.check(
                    !chain.seen.contains(row.accessToken),
                    "round \(round): key \(key) went back to an older access token")
                if let minted = inFlight.accessToken {
                    report.check(
                        row.accessToken == minted,
                        "round \(round): key \(key) holds neither the acknowledged nor the stored-in-flight token")
                }
                tally.committedBeforeAnswer += 1
            } else if row.generation < chain.generation {
                report.fail(
                    "round \(round): key \(key) lost an acknowledged token: the store is at generation \(row.generation), the agent had acknowledged \(chain.generation)"
                )
                tally.lost += 1
            } else {
                report.fail(
                    "round \(round): key \(key) jumped from acknowledged generation \(chain.generation) to \(row.generation) with \(chain.inFlight == nil ? "nothing" : "one request") in flight"
                )
            }
            report.check(!row.needsReauth, "round \(round): key \(key) needs Connect again")
            report.check(
                fake.isLive(refreshToken: row.refreshToken),
                "round \(round): key \(key)'s stored refresh token is dead at the fake (lost)")
            if used.contains(row.refreshToken) { tally.rescuedByGrace += 1 }
        }
    }

    /// Applies one answer to its key's chain; returns the key, or nil for anything that is not an answer to
    /// a request in flight.
    private func acknowledge(
        _ message: JSONValue, chains: inout [String: Chain], round: Int, tally: inout Tally, report: Report
    ) -> String? {
        guard let id = message["id"], let key = chains.first(where: { $0.value.inFlight?.id == id })?.key else {
            return nil
        }
        let operation = chains[key]!.inFlight!.operation
        chains[key]!.inFlight = nil
        guard let token = message["result"]?["accessToken"]?.stringValue else {
            report.fail("round \(round): \(operation) of \(key) failed: \(message.compactText.prefix(400))")
            return nil
        }
        if token != chains[key]!.accessToken {
            chains[key]!.generation += 1
            chains[key]!.accessToken = token
            chains[key]!.seen.insert(token)
        }
        tally.acknowledged += 1
        tally.operations["\(operation)", default: 0] += 1
        return key
    }
}
