import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import WireFormats

/// Hostile values in Smartcar's 200 answers (issue 12, class 2), against a fake that rejects any reuse of a
/// refresh token, so a rotated token the agent drops shows as a dead key: lifetimes no `Double` or `Int`
/// holds, lifetimes under a second, a lifetime that is a string, members left out. The agent stays up, never
/// hands out a token shorter than `minValidity`, keeps every rotated refresh token (RFC 6749 section 6), and
/// the store it leaves opens in a fresh agent that serves every key.
extension FaultSuite {
    /// What a refresh answered with the hostile value must end in.
    enum HostileOutcome {
        /// Success, the lifetime clamped to at most a year.
        case clamped
        /// `upstreamError` with `data.refreshTokenRotated`: the rotated refresh token is stored all the same.
        case refusedKeepingRotatedToken
        /// Success, the refresh token that was sent kept (the answer carried none).
        case keptSentRefreshToken
    }

    struct HostileCase {
        var name: String
        var expiresIn: String?
        var omit: [String] = []
        var outcome: HostileOutcome
    }

    static let hostileCases: [HostileCase] = [
        HostileCase(name: "expires_in 1e20", expiresIn: "1e20", outcome: .clamped),
        HostileCase(name: "expires_in 2^63-1", expiresIn: "9223372036854775807", outcome: .clamped),
        HostileCase(name: "expires_in 1e400", expiresIn: "1e400", outcome: .clamped),
        HostileCase(name: "expires_in 1e300", expiresIn: "1e300", outcome: .clamped),
        HostileCase(name: "expires_in -5", expiresIn: "-5", outcome: .refusedKeepingRotatedToken),
        HostileCase(name: "expires_in 0", expiresIn: "0", outcome: .refusedKeepingRotatedToken),
        HostileCase(name: "expires_in -1e20", expiresIn: "-1e20", outcome: .refusedKeepingRotatedToken),
        HostileCase(name: "expires_in \"3600\" (a string)", expiresIn: #""3600""#, outcome: .clamped),
        HostileCase(name: "expires_in \"soon\"", expiresIn: #""soon""#, outcome: .refusedKeepingRotatedToken),
        HostileCase(name: "expires_in true", expiresIn: "true", outcome: .refusedKeepingRotatedToken),
        HostileCase(name: "no access_token", omit: ["access_token"], outcome: .refusedKeepingRotatedToken),
        HostileCase(
            name: "no access_token, expires_in 1e400", expiresIn: "1e400", omit: ["access_token"],
            outcome: .refusedKeepingRotatedToken),
        HostileCase(name: "no refresh_token", omit: ["refresh_token"], outcome: .keptSentRefreshToken),
    ]

    /// A year and a day: the clamp is a year, plus rounding.
    static let longestLifetime: Int64 = 366 * 24 * 3600
    static let hostileMinValidity: Int64 = 300

    func hostileValues(injected: inout [String: Int], report: Report) throws {
        var options = FakeSmartcar.Options()
        options.refreshReuse = .rejected
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        let folder = try TemporaryFolder("agent-reliability")
        let store = folder.file("tokens.sqlite3")
        let arguments = ["--store", store, "--request-timeout", String(Self.budget)]
        var agent = try harness.agent(arguments, fake: fake)
        var outcomes: [String: Int] = [:]
        var keys: [String] = []
        for (index, hostile) in Self.hostileCases.enumerated() {
            if !agent.isRunning {
                // A dead agent fails the case that killed it; the next case gets a new one.
                agent = try harness.agent(arguments, fake: fake)
            }
            let key = "hostile-\(index)"
            keys.append(key)
            let label = "refresh answered with \(hostile.name)"
            let sent = fake.mintTokens(userID: key)
            guard agent.storeGrant(key, sent) else {
                report.fail("\(label): could not seed the key")
                continue
            }
            fake.inject(.hostileAnswer(expiresIn: hostile.expiresIn, omit: hostile.omit), on: .token)
            injected["hostile answer", default: 0] += 1
            let reply = agent.call(
                .string("refresh-\(key)"), "getToken",
                ["key": .string(key), "forceRefresh": true, "minValidity": .int(Self.hostileMinValidity)],
                timeout: .seconds(30))
            fake.reset()
            guard let reply else {
                report.fail(
                    "\(label): no answer (the agent \(agent.isRunning ? "hangs" : "died")): \(agent.keepStderr())")
                continue
            }
            outcomes[reply.outcome, default: 0] += 1
            let shown = reply.compactText.prefix(400)
            let row = (try? Harness.storedRowsNow(store))?[key]
            switch hostile.outcome {
            case .clamped, .keptSentRefreshToken:
                let expiresIn = reply["result"]?["expiresIn"]?.intValue ?? -1
                report.check(
                    (Self.hostileMinValidity...Self.longestLifetime).contains(expiresIn),
                    "\(label): expected a token valid \(Self.hostileMinValidity) s to a year, got \(shown)")
            case .refusedKeepingRotatedToken:
                report.check(
                    reply.errorKind == "upstreamError"
                        && reply["error"]?["data"]?["refreshTokenRotated"]?.boolValue == true,
                    "\(label): expected upstreamError with data.refreshTokenRotated, got \(shown)")
            }
            // No refresh token lost: the store holds the live one (or, when the answer named none, the one sent).
            if hostile.outcome == .keptSentRefreshToken {
                report.check(
                    row?.refreshToken == sent.refreshToken, "\(label): the refresh token that was sent is not kept")
            } else {
                report.check(
                    row.map { !$0.needsReauth && fake.isLive(refreshToken: $0.refreshToken) } == true,
                    "\(label): the stored refresh token is not the live one (the rotated token was lost)")
                let again = agent.call(
                    .string("again-\(key)"), "getToken", ["key": .string(key), "forceRefresh": true])
                report.check(
                    again?.isSuccess == true,
                    "\(label): afterwards the key does not refresh: \(again.map(\.compactText) ?? "no answer")")
            }
        }
        for (index, lifetime) in ["1e20", "1e400", "-5", #""x""#].enumerated() {
            if !agent.isRunning { agent = try harness.agent(arguments, fake: fake) }
            fake.inject(.hostileAnswer(expiresIn: lifetime, omit: []), on: .appToken)
            injected["hostile answer", default: 0] += 1
            let reply = agent.call(.string("app-\(index)"), "appToken", ["forceRefresh": true])
            fake.reset()
            let expiresIn = reply?["result"]?["expiresIn"]?.intValue
            report.check(
                reply?.errorKind == "upstreamError"
                    || (expiresIn.map { $0 > 0 && $0 <= Self.longestLifetime } ?? false),
                "appToken answered with expires_in \(lifetime): \(reply.map(\.compactText) ?? "no answer")")
        }
        report.check(agent.call("ping", "ping")?.isSuccess == true, "hostile values: the agent is down")
        agent.closeInput()
        report.check(agent.exitStatus() == 0, "hostile values: the agent did not exit cleanly")

        // The store the hostile answers left behind: a fresh agent lists and serves every key.
        let fresh = try harness.agent(["--store", store, "--strict-store"], fake: fake)
        let listed = fresh.call("list", "listTokens")?["result"]?["tokens"]?.arrayValue ?? []
        report.check(
            listed.count == keys.count, "hostile values: a fresh agent lists \(listed.count) of \(keys.count) keys")
        for key in keys where fresh.isRunning {
            let reply = fresh.call(.string("fresh-\(key)"), "getToken", ["key": .string(key), "minValidity": 0])
            report.check(
                reply != nil, "hostile values: a fresh agent did not answer getToken \(key): \(fresh.keepStderr())")
        }
        fresh.closeInput()
        report.check(fresh.exitStatus() == 0, "hostile values: a fresh agent on the store did not exit cleanly")
        report.figure("hostile answers", "\(Self.hostileCases.count) on refresh, 4 on appToken, reuse rejected")
        report.counts("hostile outcomes", outcomes)
    }

}
