import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import TokenStore
import WireFormats

/// Keys that Swift's `String ==` calls equal but whose bytes differ (issue 12, class 1), each spelling owned
/// by a different user, force-refreshed at once by several processes on one store. Keys are compared byte for
/// byte everywhere, so every answer carries its own spelling's user's token (the fake knows whose token is
/// whose), every spelling keeps a row of its own with its user's live refresh token, and no refresh token is
/// spent twice.
extension RaceSuite {
    /// Spellings of one key each: NFC against NFD, the Angstrom and Ohm signs against their letters, Hangul
    /// syllables against their jamo.
    static let equivalentSpellings: [[String]] = [
        ["caf\u{E9}", "cafe\u{301}"],
        ["\u{C5}ngstr\u{F6}m", "\u{212B}ngstr\u{F6}m", "A\u{30A}ngstro\u{308}m"],
        ["\u{3A9}hm", "\u{2126}hm"],
        ["\u{D55C}\u{AD6D}", "\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8}"],
        ["d\u{307}\u{323}", "d\u{323}\u{307}", "\u{1E0D}\u{307}"],
    ]

    func equivalentKeys(_ report: Report) async throws {
        let rounds = harness.long ? 50 : 5
        let processes = 3
        let upstream = UpstreamTally()
        var options = FakeSmartcar.Options()
        options.refreshReuse = .rejected
        options.log = upstream.sink
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        let folder = try TemporaryFolder("agent-reliability")
        let store = folder.file("tokens.sqlite3")
        let keys = Self.equivalentSpellings.flatMap { $0 }
        let owner = { (index: Int) in "owner-\(index)" }
        let agents = try (0..<processes).map { _ in
            try harness.agent(["--store", store, "--log-level", "warning"], fake: fake)
        }
        defer { for agent in agents { agent.kill() } }
        for (index, key) in keys.enumerated() {
            let minted = fake.mintTokens(userID: owner(index))
            guard agents[index % processes].storeGrant(key, minted, expiresAt: "2030-01-01T00:00:00Z") else {
                report.fail("equivalent keys: could not seed key \(index)")
                return
            }
        }
        var answers = 0, misdelivered = 0
        var outcomes: [String: Int] = [:]
        for round in 1...rounds {
            // Every process refreshes every spelling at once.
            var sent: [(agent: AgentProcess, id: JSONValue, index: Int)] = []
            for (number, agent) in agents.enumerated() {
                for index in keys.indices {
                    let id = JSONValue.string("r\(round)-p\(number)-k\(index)")
                    agent.request(id, "getToken", ["key": .string(keys[index]), "forceRefresh": true])
                    sent.append((agent, id, index))
                }
            }
            for (agent, id, index) in sent {
                guard let reply = agent.response(id, timeout: .seconds(60)) else {
                    report.fail(
                        "equivalent keys: round \(round), \(id.compactText) not answered: \(agent.keepStderr())")
                    return
                }
                answers += 1
                outcomes[reply.outcome, default: 0] += 1
                guard let result = reply["result"] else {
                    report.fail("equivalent keys: \(id.compactText) answered \(reply.compactText.prefix(300))")
                    continue
                }
                let answeredKey = result["key"]?.stringValue.map { Array($0.utf8) }
                let holder = result["accessToken"]?.stringValue.flatMap(fake.owner(ofToken:))
                if answeredKey != Array(keys[index].utf8) || holder != owner(index) {
                    misdelivered += 1
                    report.fail(
                        "equivalent keys: key \(index) (\(keys[index].unicodeScalars.map { String($0.value, radix: 16) })) was answered with \(holder ?? "nobody")'s token under key bytes \(answeredKey.map { "\($0)" } ?? "none"), not \(owner(index))'s"
                    )
                }
            }
        }
        for agent in agents { agent.closeInput() }
        for agent in agents { report.check(agent.exitStatus() == 0, "equivalent keys: an agent did not exit cleanly") }

        // Each spelling kept a row of its own, holding its user's live refresh token.
        let reader = try SQLiteTokenStore.open(
            .file(store), application: options.clientID, strict: true, sealing: options.storeSecrets)
        let rows = try await reader.list()
        await reader.close()
        for (index, key) in keys.enumerated() {
            let matching = rows.filter { Array($0.key.utf8) == Array(key.utf8) }
            report.check(
                matching.count == 1
                    && matching.allSatisfy {
                        fake.owner(ofToken: $0.refreshToken) == owner(index)
                            && fake.isLive(refreshToken: $0.refreshToken)
                            && fake.owner(ofToken: $0.accessToken) == owner(index)
                    },
                "equivalent keys: key \(index) has \(matching.count) rows, not one with \(owner(index))'s live tokens")
        }
        report.check(rows.count == keys.count, "equivalent keys: \(rows.count) rows for \(keys.count) spellings")
        let refused = upstream.count("token", "400")
        report.check(
            refused == 0, "equivalent keys: Smartcar refused \(refused) refreshes (a refresh token spent twice)")
        report.figure(
            "equivalent keys",
            "\(keys.count) spellings of \(Self.equivalentSpellings.count) keys, \(processes) processes, \(rounds) rounds"
        )
        report.counts("equivalent keys answered", outcomes)
        report.figure("tokens to the wrong key", "\(misdelivered) of \(answers)")
    }
}
