import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import WireFormats

/// Upstream faults: every fault the fake can inject, on every kind of call, once (transient) and until the
/// call gives up (persistent), then all of them mixed under load. Checks the error kind the contract
/// promises, the number of upstream attempts (retries only where safe, within the budget), the duration, and
/// that no refresh token is lost (after the faults clear, every key still refreshes).
///
/// The fake allows Smartcar's one-minute reuse grace: a refresh whose answer is lost (dropped after handling,
/// or later than the budget) has rotated the refresh token, and only the grace lets the agent use the one it
/// kept. Injected `invalid_grant` is the one fault after which a key rightly needs Connect again.
@MainActor
struct FaultSuite {
    let harness: Harness

    /// `--request-timeout`: the budget of one call, retries included.
    static let budget: Double = 1.5
    /// Time allowed beyond the budget (process scheduling on busy cores).
    static let slack: Double = 1.5

    enum Call: String, CaseIterable {
        /// `getToken` with `forceRefresh` (POST /oauth/token, single-use: the refresh token rotates).
        case refresh
        /// `exchangeCode` with a key (POST /oauth/token, single-use: the code is spent).
        case exchange
        /// `exchangeCode` without a key: the exchange succeeds, the fault hits `GET /v2.0/user` (retryable).
        case userLookup
        /// `appToken` with `forceRefresh` (POST /oauth2/token, retryable).
        case appToken

        var endpoint: Endpoint {
            switch self {
            case .refresh, .exchange: .token
            case .userLookup: .user
            case .appToken: .appToken
            }
        }

        var isSingleUse: Bool { self == .refresh || self == .exchange }
    }

    struct NamedFault {
        var name: String
        var fault: Fault
    }

    static let faults: [NamedFault] = [
        NamedFault(
            name: "500 JSON",
            fault: .status(500, body: #"{"error":"server_error","error_description":"Internal error"}"#)),
        NamedFault(name: "503 Retry-After 0", fault: .status(503, body: "", headers: ["Retry-After": "0"])),
        NamedFault(name: "502 HTML", fault: .htmlError(502)),
        NamedFault(
            name: "400 invalid_request",
            fault: .status(400, body: #"{"error":"invalid_request","error_description":"Missing parameter"}"#)),
        NamedFault(
            name: "400 invalid_grant",
            fault: .status(400, body: #"{"error":"invalid_grant","error_description":"Invalid or expired"}"#)),
        NamedFault(
            name: "401 invalid_client",
            fault: .status(401, body: #"{"error":"invalid_client","error_description":"Invalid client credentials."}"#)),
        NamedFault(name: "401 Basic realm", fault: .invalidClientBasicRealm),
        NamedFault(name: "418 text", fault: .status(418, body: "I'm a teapot")),
        NamedFault(
            name: "302 redirect", fault: .status(302, body: "", headers: ["Location": "http://127.0.0.1:9/elsewhere"])),
        NamedFault(name: "200 malformed", fault: .status(200, body: "{}")),
        NamedFault(name: "429 Retry-After 1", fault: .rateLimited(retryAfter: "1")),
        NamedFault(name: "429 Retry-After 60", fault: .rateLimited(retryAfter: "60")),
        NamedFault(name: "stall", fault: .stall),
        NamedFault(name: "drop", fault: .drop),
        NamedFault(name: "drop after handling", fault: .dropAfterHandling),
        NamedFault(name: "delay 0.3 s", fault: .delay(.milliseconds(300))),
        NamedFault(name: "delay past the budget", fault: .delay(.seconds(3))),
        NamedFault(name: "endless body", fault: .endlessBody),
    ]

    /// What a call must end in, by the contract (Protocol/README.md, Errors) and the retry rules (a single-use
    /// call is retried only after a 429; a retryable one also after 5xx and network failures).
    struct Expected {
        /// nil: success.
        var kinds: Set<String>?
        var attempts: ClosedRange<Int>
        var mayHaveReachedServer: Bool?
        var retryAfter: Int64?
        /// The agent itself sends a refresh whose answer may have been lost again, with the same refresh token
        /// (each a call of its own, so `data.retried` does not count them, and each may use the whole budget).
        var agentResends = false
    }

    static func expected(_ fault: NamedFault, call: Call, persistent: Bool) -> Expected {
        let single = call.isSingleUse
        func failure(
            _ kinds: Set<String>, _ attempts: ClosedRange<Int> = 1...1, reached: Bool? = nil, retryAfter: Int64? = nil
        ) -> Expected {
            Expected(kinds: kinds, attempts: attempts, mayHaveReachedServer: reached, retryAfter: retryAfter)
        }
        func retriedUntilGivenUp(_ kind: String) -> Expected {
            if call == .refresh { return resentUntilGivenUp(kind) }
            if single { return failure([kind], reached: true) }
            return persistent ? failure([kind], 3...3) : Expected(kinds: nil, attempts: 2...2)
        }
        // A refresh whose answer may have been lost is sent twice more, inside Smartcar's reuse window.
        func resentUntilGivenUp(_ kind: String) -> Expected {
            var expected = persistent ? failure([kind], 3...3, reached: true) : Expected(kinds: nil, attempts: 2...2)
            expected.agentResends = true
            return expected
        }
        switch fault.name {
        case "500 JSON", "503 Retry-After 0", "502 HTML": return retriedUntilGivenUp("upstreamUnavailable")
        case "drop", "drop after handling": return retriedUntilGivenUp("upstreamUnavailable")
        case "400 invalid_request": return failure([call == .exchange ? "invalidGrant" : "upstreamError"])
        case "400 invalid_grant":
            return failure([call == .refresh ? "reauthRequired" : call == .exchange ? "invalidGrant" : "upstreamError"])
        // The Basic challenge is read with its body (libcurl), so it is the plain invalid_client answer.
        case "401 invalid_client", "401 Basic realm": return failure(["invalidClient"])
        case "418 text", "302 redirect": return failure(["upstreamError"])
        case "200 malformed":
            return call == .refresh
                ? resentUntilGivenUp("upstreamError") : failure(["upstreamError"], reached: single ? true : nil)
        case "429 Retry-After 1":
            return persistent ? failure(["rateLimited"], 2...3, retryAfter: 1) : Expected(kinds: nil, attempts: 2...2)
        case "429 Retry-After 60": return failure(["rateLimited"], retryAfter: 60)
        // Abandoned at the 1 MiB cap: Smartcar did answer, so a retryable call is not sent again; a refresh's
        // answer (and the rotated token in it) was lost, so the refresh is.
        case "endless body":
            if call == .refresh { return resentUntilGivenUp("upstreamError") }
            return failure(["upstreamError"], reached: single ? true : nil)
        case "stall", "delay past the budget":
            if call == .refresh { return resentUntilGivenUp("upstreamUnavailable") }
            return failure(["upstreamUnavailable"], reached: single ? true : nil)
        default: return Expected(kinds: nil, attempts: 1...1)  // "delay 0.3 s"
        }
    }

    func run(_ report: Report) throws {
        let upstream = UpstreamTally()
        var options = FakeSmartcar.Options()
        options.refreshReuse = .grace(60)
        options.log = upstream.sink
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        var injected: [String: Int] = [:]
        try alone(fake: fake, upstream: upstream, injected: &injected, report: report)
        try mixed(fake: fake, upstream: upstream, injected: &injected, report: report)
        try hostileValues(injected: &injected, report: report)
        report.counts("faults injected", injected)
        report.figure("faults injected in all", injected.values.reduce(0, +))
    }

    // MARK: Each fault alone

    private func alone(
        fake: FakeSmartcar, upstream: UpstreamTally, injected: inout [String: Int], report: Report
    ) throws {
        let agent = try harness.agent(["--store", "memory", "--request-timeout", String(Self.budget)], fake: fake)
        var serial = 0
        var cases = 0, slowest = 0.0, recovered = 0
        var outcomes: [String: Int] = [:]
        for fault in Self.faults {
            // A stall or a late answer uses the whole budget at the first attempt: once is enough.
            let persistence = fault.name == "stall" || fault.name == "delay past the budget" ? [false] : [false, true]
            for persistent in persistence {
                for call in Call.allCases {
                    serial += 1
                    cases += 1
                    let label = "\(fault.name) \(persistent ? "persistent" : "once") on \(call.rawValue)"
                    let key = "fault-\(serial)"
                    var params: [String: JSONValue] = [:]
                    switch call {
                    case .refresh:
                        let minted = fake.mintTokens(userID: key)
                        guard
                            agent.call(
                                .string("seed-\(serial)"), "storeToken",
                                [
                                    "key": .string(key), "accessToken": .string(minted.accessToken),
                                    "refreshToken": .string(minted.refreshToken), "expiresAt": "2020-01-01T00:00:00Z",
                                ])?.isSuccess == true
                        else {
                            report.fail("\(label): could not seed the key")
                            continue
                        }
                        params = ["key": .string(key), "forceRefresh": true]
                    case .exchange:
                        params = [
                            "code": .string(fake.issueCode(redirectURI: FakeSmartcar.redirectURI, userID: key)),
                            "key": .string(key),
                        ]
                    case .userLookup:
                        params = ["code": .string(fake.issueCode(redirectURI: FakeSmartcar.redirectURI, userID: key))]
                    case .appToken:
                        params = ["forceRefresh": true]
                    }
                    let method = call == .refresh ? "getToken" : call == .appToken ? "appToken" : "exchangeCode"
                    let times = persistent ? 5 : 1
                    let before = fake.count(call.endpoint)
                    fake.inject(fault.fault, on: call.endpoint, times: times)
                    injected[fault.name, default: 0] += times
                    let started = ContinuousClock.now
                    let reply = agent.call(.string("call-\(serial)"), method, .object(params), timeout: .seconds(30))
                    let seconds = Self.seconds(ContinuousClock.now - started)
                    slowest = max(slowest, seconds)
                    let attempts = fake.count(call.endpoint) - before
                    let expected = Self.expected(fault, call: call, persistent: persistent)
                    if expected.agentResends {
                        // A lost answer is recovered with the same refresh token, never a new one.
                        let sent = Set(fake.requests.suffix(attempts).compactMap { $0.form["refresh_token"] })
                        report.check(
                            sent.count == 1, "\(label): the resends carried \(sent.count) different refresh tokens")
                    }
                    fake.reset()  // leftover uses of a persistent fault
                    guard let reply else { report.fail("\(label): no answer within 30 s"); continue }
                    outcomes[reply.outcome, default: 0] += 1
                    check(
                        reply, against: expected, attempts: attempts, seconds: seconds, label: label, report: report)

                    // No refresh token lost: with the faults gone the key refreshes (unless Smartcar, for all the
                    // agent knows, refused its refresh token).
                    if call == .refresh && fault.name != "400 invalid_grant" {
                        let again = agent.call(
                            .string("again-\(serial)"), "getToken", ["key": .string(key), "forceRefresh": true])
                        let shown = again.map(\.compactText) ?? "no answer"
                        let refreshes = again?.isSuccess == true
                        if report.check(refreshes, "\(label): afterwards the key no longer refreshes: \(shown)") {
                            recovered += 1
                        }
                    }
                }
            }
        }
        // An endless body is abandoned at its cap: it never grows the agent's memory.
        let peakMiB = agent.peakResidentMiB ?? 0
        report.check(peakMiB < 200, "the agent's memory grew to \(peakMiB) MiB in the single faults")
        agent.closeInput()
        report.check(agent.exitStatus() == 0, "the agent of the single faults did not exit cleanly")
        let refused = upstream.count("token", "400")
        report.check(
            refused == 0,
            "Smartcar really refused \(refused) token requests (not injected): a refresh token or code was reused")
        // The tally every suite counts invalid_grant with must see the 400s that were injected.
        report.check(
            upstream.count("token", "400 fault") > 0,
            "the upstream tally saw none of the injected 400s: it cannot count invalid_grant")
        report.figure("single-fault cases", "\(cases) (\(Self.faults.count) faults × 4 calls, once and persistent)")
        report.counts("single-fault outcomes", outcomes)
        report.figure("keys refreshing afterwards", "\(recovered) of \(recovered) checked")
        report.figure("agent memory in them", "\(peakMiB) MiB resident at the peak")
        report.figure("slowest single-fault call", String(format: "%.2f s (budget %.1f s)", slowest, Self.budget))
    }

    private func check(
        _ reply: JSONValue, against expected: Expected, attempts: Int, seconds: Double, label: String, report: Report
    ) {
        let shown = reply.compactText.prefix(500)
        if let kinds = expected.kinds {
            report.check(
                reply.errorKind.map(kinds.contains) == true,
                "\(label): expected \(kinds.sorted().joined(separator: " or ")), got \(shown)")
            let data = reply["error"]?["data"]
            if let reached = expected.mayHaveReachedServer {
                report.check(
                    data?["mayHaveReachedServer"]?.boolValue == reached,
                    "\(label): data.mayHaveReachedServer should be \(reached): \(shown)")
            }
            if let retryAfter = expected.retryAfter {
                report.check(
                    data?["retryAfter"]?.intValue == retryAfter,
                    "\(label): data.retryAfter should be \(retryAfter): \(shown)")
            }
            if attempts > 1 && !expected.agentResends {
                report.check(
                    data?["retried"]?.intValue == Int64(attempts - 1),
                    "\(label): data.retried should be \(attempts - 1): \(shown)")
            }
            report.check(!(reply["error"]?["message"]?.stringValue ?? "").isEmpty, "\(label): the error has no message")
        } else {
            report.check(reply.isSuccess, "\(label): expected success, got \(shown)")
        }
        report.check(
            expected.attempts.contains(attempts),
            "\(label): \(attempts) upstream attempts, expected \(expected.attempts)")
        let allowed = Self.budget * Double(expected.agentResends ? attempts : 1)
        report.check(
            seconds <= allowed + Self.slack,
            "\(label): took \(String(format: "%.2f", seconds)) s, the budget is \(allowed) s")
        if label.hasPrefix("429 Retry-After 1 once") {
            report.check(
                seconds >= 0.95,
                "\(label): answered after \(String(format: "%.2f", seconds)) s, before Retry-After allowed a retry")
        }
    }

    // MARK: Mixed under load

    /// The faults mixed under load: those after which the agent cannot tell a lie from Smartcar's word
    /// (`invalid_grant`) are left out; a 4xx is a 422 so that every 400 at the token endpoint is a real refusal.
    static let mixable: [NamedFault] =
        faults.filter { !$0.name.hasPrefix("400") }
        + [NamedFault(name: "422 unprocessable", fault: .status(422, body: #"{"error":"invalid_request"}"#))]

    private func mixed(
        fake: FakeSmartcar, upstream: UpstreamTally, injected: inout [String: Int], report: Report
    ) throws {
        let rounds = harness.long ? 40 : 4
        let keys = (0..<30).map { "mixed-\($0)" }
        let concurrency = 4
        var random = SeededGenerator(seed: harness.seed ^ 0xFA17)
        let folder = try TemporaryFolder("agent-reliability")
        let agent = try harness.agent(
            [
                "--store", folder.file("tokens.sqlite3"), "--request-timeout", String(Self.budget),
                "--max-upstream-concurrency", String(concurrency),
            ], fake: fake)
        for key in keys {
            let minted = fake.mintTokens(userID: key)
            guard
                agent.call(
                    .string("seed-\(key)"), "storeToken",
                    [
                        "key": .string(key), "accessToken": .string(minted.accessToken),
                        "refreshToken": .string(minted.refreshToken), "expiresAt": "2020-01-01T00:00:00Z",
                    ])?.isSuccess == true
            else {
                report.fail("mixed: could not seed \(key)")
                return
            }
        }
        let refusedBefore = upstream.count("token", "400") + upstream.count("token", "400 fault")
        var requests = 0, calls = 0, worstRatio = 0.0, reauth = 0
        var outcomes: [String: Int] = [:]
        let allowed: Set<String> = ["result", "rateLimited", "upstreamUnavailable", "upstreamError", "invalidClient"]
        let failuresBefore = report.failures.count
        for round in 1...rounds where report.failures.count == failuresBefore {
            for _ in 0..<Int.random(in: 5...15, using: &random) {
                let fault = Self.mixable.randomElement(using: &random)!
                let times = Int.random(in: 1...3, using: &random)
                fake.inject(
                    fault.fault, on: [Endpoint.token, .token, .appToken, nil].randomElement(using: &random)!,
                    times: times)
                injected[fault.name, default: 0] += times
            }
            let before = fake.count(.token) + fake.count(.appToken)
            var ids: [JSONValue] = []
            for key in keys {
                for copy in 0..<Int.random(in: 1...3, using: &random) {
                    ids.append(
                        agent.request(
                            .string("r\(round)-\(key)-\(copy)"), "getToken",
                            ["key": .string(key), "forceRefresh": true]))
                }
            }
            for copy in 0..<5 {
                ids.append(agent.request(.string("r\(round)-app-\(copy)"), "appToken", ["forceRefresh": true]))
            }
            let answered = agent.waitUntil(.now + .seconds(120)) { inbox in ids.allSatisfy { inbox.count($0) > 0 } }
            guard answered else {
                report.fail(
                    "mixed round \(round): not every request was answered within 120 s; stderr: \(agent.keepStderr())")
                return
            }
            let roundCalls = fake.count(.token) + fake.count(.appToken) - before
            requests += ids.count
            calls += roundCalls
            worstRatio = max(worstRatio, Double(roundCalls) / Double(ids.count))
            // No retry storm: at most one refresh per request in flight, each tried at most 3 times.
            report.check(
                roundCalls <= 3 * ids.count,
                "mixed round \(round): \(roundCalls) upstream calls for \(ids.count) requests")
            do {
                let contents = agent.inbox
                for id in ids {
                    let reply = contents.first(id)!
                    outcomes[reply.outcome, default: 0] += 1
                    if reply.errorKind == "reauthRequired" { reauth += 1 }
                    report.check(
                        allowed.contains(reply.outcome),
                        "mixed round \(round): \(id.compactText) answered \(reply.compactText.prefix(400))")
                }
            }
            fake.reset()
            // Faults gone: every key refreshes with the refresh token the agent kept.
            for key in keys {
                let reply = agent.call(
                    .string("check-\(round)-\(key)"), "getToken", ["key": .string(key), "forceRefresh": true])
                let shown = reply.map(\.compactText) ?? "no answer"
                report.check(
                    reply?.isSuccess == true,
                    "mixed round \(round): after the faults \(key) does not refresh: \(shown)")
            }
        }
        let peak = agent.call("status", "status")?["result"]?["peakUpstreamConcurrency"]?.intValue ?? -1
        report.check(
            (1...Int64(concurrency)).contains(peak), "mixed: peak upstream concurrency \(peak), limit \(concurrency)")
        agent.closeInput()
        report.check(agent.exitStatus() == 0, "the agent of the mixed faults did not exit cleanly")
        let refused = upstream.count("token", "400") + upstream.count("token", "400 fault") - refusedBefore
        report.check(
            refused == 0, "mixed: Smartcar refused \(refused) refresh tokens (invalid_grant: one was reused or lost)")
        report.figure(
            "mixed rounds", "\(rounds) × \(keys.count) keys, upstream concurrency ≤ \(concurrency) (peak \(peak))")
        report.counts("mixed outcomes", outcomes)
        report.figure(
            "upstream calls vs bound",
            "\(calls) for \(requests) requests (bound 3 per request; worst round \(String(format: "%.2f", worstRatio)) per request)"
        )
        report.figure("reauthRequired under faults", reauth)
        report.figure("invalid_grant at the fake", refused)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}
