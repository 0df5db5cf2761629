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

/// Secrets: every method, every error path, upstream faults whose bodies echo the call's secrets, wrong and
/// missing credentials, a secret file, SIGTERM and a crash (whose output must not be Swift's report, which
/// prints registers and the memory they point at),
/// all at `--log-level trace`, with known secret
/// values (a client secret with characters that encode differently in JSON, URLs and forms; the tokens and
/// codes the fake minted and saw). Then stdout, stderr and every error payload are scanned for each secret
/// in each form: zero hits. Access tokens may appear only where they are the answer (`result.accessToken`).
@MainActor
struct SecretsSuite {
    let harness: Harness

    static let clientID = "reliability-client-id"

    /// One agent run of a scenario, kept until the scan.
    private struct Run {
        var name: String
        var agent: AgentProcess
    }

    /// Sends requests with ids of its own and waits for each answer.
    private final class Client {
        let agent: AgentProcess
        let name: String
        private var next = 0

        init(_ agent: AgentProcess, _ name: String) {
            self.agent = agent
            self.name = name
        }

        @discardableResult
        func call(_ method: String, _ params: JSONValue? = nil, timeout: Duration = .seconds(30)) -> JSONValue? {
            agent.response(send(method, params), timeout: timeout)
        }

        func send(_ method: String, _ params: JSONValue? = nil) -> JSONValue {
            next += 1
            return agent.request(.string("\(name)-\(next)"), method, params)
        }
    }

    func run(_ report: Report) async throws {
        var random = SeededGenerator(seed: harness.seed ^ 0x5EC2E7)
        let clientSecret = "Rel-Secret_+/=&ü~ " + Self.hex(&random)
        let wrongSecret = "Wrong-Secret_+/=&ü~ " + Self.hex(&random)
        var options = FakeSmartcar.Options()
        options.clientID = Self.clientID
        options.clientSecret = clientSecret
        options.refreshReuse = .grace(60)
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        let folder = try TemporaryFolder("agent-reliability")
        let store = folder.file("state/tokens.sqlite3")
        let basic = Data("\(Self.clientID):\(clientSecret)".utf8).base64EncodedString()
        var runs: [Run] = []
        var expectations = 0
        /// Values no run may show anywhere, and access tokens, which may be shown only as the answer.
        var secrets: [(label: String, value: String)] = []
        var accessTokens: Set<String> = []
        func expect(_ reply: JSONValue?, _ outcome: String, _ what: String) {
            expectations += 1
            let shown = reply.map { String($0.compactText.prefix(300)) } ?? "no answer"
            report.check(reply?.outcome == outcome, "\(what): expected \(outcome), got \(shown)")
        }
        func session(
            _ name: String, arguments: [String] = [], environment: [String: String]? = nil, _ body: (Client) -> Void
        ) throws {
            let agent = try harness.agent(
                ["--store", store, "--log-level", "trace", "--request-timeout", "1.5"] + arguments,
                fake: environment == nil ? fake : nil,
                environment: environment ?? [:], keepRawOutput: true)
            body(Client(agent, name))
            agent.closeInput()
            _ = agent.exitStatus()
            runs.append(Run(name: name, agent: agent))
        }
        func mint(_ user: String) -> (accessToken: String, refreshToken: String) {
            let pair = fake.mintTokens(userID: user)
            accessTokens.insert(pair.accessToken)
            secrets.append(("refresh token", pair.refreshToken))
            return pair
        }
        func code(_ user: String, redirectURI: String = FakeSmartcar.redirectURI) -> String {
            let code = fake.issueCode(redirectURI: redirectURI, userID: user)
            secrets.append(("authorization code", code))
            return code
        }
        func storeParams(
            _ key: String, _ pair: (accessToken: String, refreshToken: String),
            expiresAt: String = "2020-01-01T00:00:00Z"
        ) -> JSONValue {
            [
                "key": .string(key), "accessToken": .string(pair.accessToken),
                "refreshToken": .string(pair.refreshToken), "expiresAt": .string(expiresAt),
            ]
        }
        let redirect = FakeSmartcar.redirectURI

        try session("methods") { c in
            expect(
                c.call(
                    "initialize", ["notifications": true, "clientInfo": ["name": "secrets-suite", "version": "1"]]),
                "result", "initialize")
            expect(c.call("ping"), "result", "ping")
            expect(c.call("status"), "result", "status")
            let built = c.call(
                "buildConnectURL",
                [
                    "key": "car-a", "scope": ["read_odometer", "required:read_vin"], "mode": "test",
                    "forcePrompt": true,
                    "make": "TESLA", "singleSelectVIN": "5YJSA1E14FF101307", "flags": ["country": "DE", "beta": true],
                    "user": "u-1",
                ])
            expect(built, "result", "buildConnectURL")
            let state = built?["result"]?["state"]?.stringValue ?? ""
            expect(
                c.call("handleRedirect", ["url": .string("\(redirect)?code=\(code("user-a"))&state=\(state)")]),
                "result", "handleRedirect")
            expect(
                c.call("exchangeCode", ["code": .string(code("user-b")), "key": "car-b"]), "result",
                "exchangeCode with a key")
            expect(
                c.call("exchangeCode", ["code": .string(code("user-c"))]), "result",
                "exchangeCode without a key (user lookup)")
            expect(c.call("getToken", ["key": "car-a"]), "result", "getToken")
            expect(c.call("getToken", ["key": "car-a", "forceRefresh": true]), "result", "getToken forceRefresh")
            expect(c.call("getToken", ["key": "car-b", "minValidity": 3600]), "result", "getToken minValidity")
            let refused = c.call("getToken", ["key": "car-a"])?["result"]?["accessToken"] ?? .null
            expect(c.call("getToken", ["key": "car-a", "rejectedToken": refused]), "result", "getToken rejectedToken")
            expect(c.call("appToken"), "result", "appToken")
            expect(c.call("appToken", ["forceRefresh": true]), "result", "appToken forceRefresh")
            var stored = storeParams("car-d", mint("user-d"), expiresAt: "2031-01-01T00:00:00Z")
            if case .object(var members) = stored {
                members["refreshExpiresAt"] = "2031-02-01T00:00:00Z"; members["scope"] = "read_odometer";
                stored = .object(members)
            }
            expect(c.call("storeToken", stored), "result", "storeToken")
            expect(c.call("listTokens"), "result", "listTokens")
            expect(c.call("forgetToken", ["key": "car-b"]), "result", "forgetToken")
            // A cancelled getToken whose refresh still completes and is stored.
            fake.inject(.delay(.milliseconds(500)), on: .token)
            let cancelled = c.send("getToken", ["key": "car-a", "forceRefresh": true])
            c.agent.sendLine(Requests.notification("$/cancelRequest", ["id": cancelled]))
            expect(c.agent.response(cancelled), "cancelled", "a cancelled getToken")
            expect(c.call("getToken", ["key": "car-a"]), "result", "getToken after a cancelled refresh")
            expect(c.call("shutdown"), "result", "shutdown")
            c.agent.sendLine(Requests.notification("exit"))
        }

        try session("errors", arguments: ["--max-message-bytes", "2048"]) { c in
            expect(c.call("getToken", ["key": "nobody"]), "unknownKey", "getToken of an unknown key")
            expect(c.call("storeToken", storeParams("revoked", mint("user-revoked"))), "result", "storeToken")
            fake.revokeTokens(userID: "user-revoked")
            expect(c.call("getToken", ["key": "revoked"]), "reauthRequired", "getToken of a revoked key")
            expect(c.call("getToken", ["key": "revoked"]), "reauthRequired", "getToken of a revoked key, again")
            let used = code("user-e")
            expect(c.call("exchangeCode", ["code": .string(used), "key": "car-e"]), "result", "exchangeCode")
            expect(c.call("exchangeCode", ["code": .string(used), "key": "car-e"]), "invalidGrant", "a used code")
            expect(
                c.call(
                    "exchangeCode",
                    ["code": .string(code("user-f", redirectURI: "http://localhost:9999/other")), "key": "car-f"]),
                "invalidGrant", "a code for another redirect URI")
            expect(
                c.call("handleRedirect", ["url": .string("\(redirect)?code=\(code("user-g"))&state=forged")]),
                "stateMismatch", "a forged state")
            let state = c.call("buildConnectURL", ["key": "car-h"])?["result"]?["state"]?.stringValue ?? ""
            let url = "\(redirect)?code=\(code("user-h"))&state=\(state)"
            expect(c.call("handleRedirect", ["url": .string(url)]), "result", "handleRedirect")
            expect(c.call("handleRedirect", ["url": .string(url)]), "stateMismatch", "a reused redirect")
            let denied = c.call("buildConnectURL")?["result"]?["state"]?.stringValue ?? ""
            expect(
                c.call(
                    "handleRedirect",
                    ["url": .string("\(redirect)?error=access_denied&error_description=User+denied&state=\(denied)")]),
                "connectError", "a denied Connect")
            let pair = mint("user-i")
            let badTime: JSONValue = [
                "key": "car-i", "accessToken": .string(pair.accessToken),
                "refreshToken": .string(pair.refreshToken), "expiresAt": "tomorrow",
            ]
            expect(c.call("storeToken", badTime), "invalidParams", "storeToken with a bad time")
            let wrongType: JSONValue = [
                "key": "car-i", "accessToken": .string(pair.accessToken), "refreshToken": 5,
                "expiresAt": "2030-01-01T00:00:00Z",
            ]
            expect(c.call("storeToken", wrongType), "invalidParams", "storeToken with a wrong type")
            expect(
                c.call("exchangeCode", ["code": .string(code("user-j")), "flags": "x"]), "invalidParams",
                "exchangeCode with bad flags")
            // Broken messages carrying secrets: the error answers them without quoting them, and the log too.
            let secretRT = mint("user-k").refreshToken
            c.agent.sendLine(
                #"{"jsonrpc":"2.0","id":"broken-1","method":"storeToken","params":{"key":"k","refreshToken":"\#(secretRT)","accessToken":"#
            )
            expect(c.agent.response("broken-1"), "parseError", "a broken message with a refresh token")
            c.agent.send(
                Array(
                    #"{"jsonrpc":"2.0","id":"broken-2","method":"exchangeCode","params":{"code":"\#(code("user-l"))\#u{FF}"}}"#
                        .utf8) + [0xFF, 0x0A])
            expect(c.agent.response("broken-2"), "parseError", "a message with bad UTF-8 and a code")
            c.agent.sendLine(
                #"{"jsonrpc":"2.0","id":"big-1","method":"storeToken","params":{"refreshToken":"\#(mint("user-m").refreshToken)","pad":"\#(String(repeating: "x", count: 3000))"}}"#
            )
            expect(c.agent.response("big-1"), "invalidRequest", "a message over the size limit with a refresh token")
            c.agent.send(
                Array(
                    "Content-Length: 12x\r\nAuthorization: Basic \(basic)\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":\"bad-length\",\"secret\":\"\(clientSecret)\"}\n"
                        .utf8))
            // Skipped up to the next message, then answered.
            expect(c.call("ping"), "result", "ping after broken input")
            expect(c.agent.response("bad-length"), "invalidRequest", "a frame with a bad length and the client secret")
        }

        try session("faults") { c in
            let madeUp = "made-up-access-token-" + Self.hex(&random)
            let madeUpRefresh = "made-up-refresh-token-" + Self.hex(&random)
            secrets.append(("access token in a malformed answer", madeUp))
            secrets.append(("refresh token in a malformed answer", madeUpRefresh))
            // Each fault echoes the refresh token of the request it answers. A refresh whose answer may have
            // been lost is sent again (and then succeeds): the outcomes say so.
            let echoing: [((String) -> Fault, String)] = [
                (
                    { rt in
                        .status(
                            400,
                            body:
                                #"{"error":"invalid_request","error_description":"bad refresh_token \#(rt) for client \#(clientSecret) (\#(basic))"}"#
                        )
                    }, "upstreamError"
                ),
                (
                    { rt in
                        .status(500, body: #"{"error":"server_error","error_description":"\#(rt) \#(clientSecret)"}"#)
                    },
                    "result"
                ),
                (
                    { rt in
                        .status(
                            502, body: "<html><body>\(rt) \(clientSecret) \(basic)</body></html>",
                            headers: ["Content-Type": "text/html"])
                    }, "result"
                ),
                (
                    { rt in
                        .status(
                            429,
                            body:
                                #"{"type":"RATE_LIMIT","code":"SMARTCAR_API","description":"\#(rt)","resolution":{"type":"RETRY_LATER","detail":"\#(clientSecret)"},"suggestedUserMessage":"\#(basic)","requestId":"r-1"}"#,
                            headers: ["Retry-After": "60"])
                    }, "rateLimited"
                ),
                (
                    { _ in
                        .status(
                            200,
                            body:
                                #"{"access_token":"\#(madeUp)","token_type":"Bearer","expires_in":-5,"refresh_token":"\#(madeUpRefresh)"}"#
                        )
                    }, "upstreamError"
                ),
                ({ _ in .rateLimited(retryAfter: "0") }, "result"),
                ({ _ in .invalidClientBasicRealm }, "invalidClient"),
                ({ _ in .stall }, "result"),
                ({ _ in .drop }, "result"),
                ({ _ in .dropAfterHandling }, "result"),
                ({ _ in .delay(.milliseconds(200)) }, "result"),
            ]
            for (fault, outcome) in echoing {
                let pair = mint("user-faulty")
                expect(c.call("storeToken", storeParams("faulty", pair)), "result", "storeToken")
                let injected = fault(pair.refreshToken)
                fake.inject(injected, on: .token)
                expect(
                    c.call("getToken", ["key": "faulty", "forceRefresh": true]), outcome, "refresh with \(injected)")
                fake.reset()
            }
            // Smartcar echoes what it was sent: a fresh pair, so the rejected token is the one in the request.
            let last = mint("user-faulty")
            expect(c.call("storeToken", storeParams("faulty", last)), "result", "storeToken")
            fake.inject(
                .status(
                    400,
                    body:
                        #"{"error":"invalid_grant","error_description":"Invalid refresh token \#(last.refreshToken)"}"#),
                on: .token)
            expect(
                c.call("getToken", ["key": "faulty", "forceRefresh": true]), "reauthRequired",
                "refresh answered invalid_grant")
            let exchangeFaults: [(String, (String) -> Fault, String)] = [
                (
                    "400 echoing the code",
                    { .status(400, body: #"{"error":"invalid_grant","error_description":"Invalid code: \#($0)"}"#) },
                    "invalidGrant"
                ),
                (
                    "500 echoing the code",
                    { .status(500, body: #"{"error":"server_error","error_description":"\#($0)"}"#) },
                    "upstreamUnavailable"
                ),
                ("stall", { _ in .stall }, "upstreamUnavailable"),
            ]
            for (name, fault, outcome) in exchangeFaults {
                let exchanged = code("user-x")
                fake.inject(fault(exchanged), on: .token)
                expect(
                    c.call("exchangeCode", ["code": .string(exchanged), "key": "car-x"]), outcome,
                    "exchange with \(name)")
                fake.reset()
            }
            fake.inject(
                .status(401, body: #"{"type":"AUTHENTICATION","description":"unknown client \#(clientSecret)"}"#),
                on: .user, times: 3)
            expect(
                c.call("exchangeCode", ["code": .string(code("user-y2"))]), "upstreamError",
                "a user lookup answered 401")
            fake.reset()
            for (fault, outcome) in [
                (
                    Fault.status(
                        401,
                        body:
                            #"{"error":"invalid_client","error_description":"client_secret \#(clientSecret) is wrong"}"#
                    ), "invalidClient"
                ),
                (
                    .status(
                        500,
                        body:
                            "client_secret=\(clientSecret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
                    ), "upstreamUnavailable"
                ),
                (
                    .status(400, body: #"{"error":"invalid_request","error_description":"\#(clientSecret)"}"#),
                    "upstreamError"
                ),
            ] {
                fake.inject(fault, on: .appToken, times: 3)
                expect(c.call("appToken", ["forceRefresh": true]), outcome, "appToken with \(fault)")
                fake.reset()
            }
        }

        var wrong = fake.agentEnvironment
        wrong["SMARTCAR_CLIENT_SECRET"] = wrongSecret
        try session("wrong secret", arguments: ["--store", "memory"], environment: wrong) { c in
            expect(c.call("appToken"), "invalidClient", "appToken with a wrong secret")
            expect(
                c.call("exchangeCode", ["code": .string(code("user-w")), "key": "w"]), "invalidClient",
                "exchange with a wrong secret")
            expect(c.call("storeToken", storeParams("w2", mint("user-w2"))), "result", "storeToken")
            expect(c.call("getToken", ["key": "w2"]), "invalidClient", "refresh with a wrong secret")
        }

        let secretFile = folder.file("client-secret")
        guard
            FileManager.default.createFile(
                atPath: secretFile, contents: Data((clientSecret + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else {
            report.fail("cannot write \(secretFile)")
            return
        }
        var fileOnly = fake.agentEnvironment
        fileOnly["SMARTCAR_CLIENT_SECRET"] = nil
        try session(
            "secret file", arguments: ["--store", "memory", "--client-secret-file", secretFile], environment: fileOnly
        ) { c in
            expect(c.call("appToken", ["forceRefresh": true]), "result", "appToken with the secret from a file")
            expect(c.call("initialize"), "result", "initialize")
        }
        try session(
            "no credentials", arguments: ["--store", "memory"], environment: ["SMARTCAR_CLIENT_ID": Self.clientID]
        ) { c in
            expect(c.call("appToken"), "configurationError", "appToken without a secret")
            expect(
                c.call("exchangeCode", ["code": .string(code("user-n"))]), "configurationError",
                "exchange without a secret")
        }

        try session("sigterm") { c in
            fake.inject(.delay(.milliseconds(600)), on: .token)
            let before = fake.count(.token)
            let id = c.send("getToken", ["key": "car-a", "forceRefresh": true])
            // Once the refresh is in flight (polling the fake's count, with a deadline): SIGTERM.
            let deadline = ContinuousClock.now + .seconds(30)
            while fake.count(.token) == before && ContinuousClock.now < deadline { usleep(1000) }
            c.agent.kill(SIGTERM)
            expect(c.agent.response(id), "result", "a refresh in flight at SIGTERM")
        }
        // Issue 12's faults: hostile answers, an endless body, the store locked mid-refresh, signals mid-refresh.
        try session("adversity", arguments: ["--store-busy-timeout", "0.2"]) { c in
            /// Sends a forced refresh held back at Smartcar and returns once Smartcar has it.
            func refreshInFlight() -> JSONValue {
                fake.inject(.delay(.seconds(1)), on: .token)
                let before = fake.count(.token)
                let id = c.send("getToken", ["key": "adverse", "forceRefresh": true])
                let deadline = ContinuousClock.now + .seconds(30)
                while fake.count(.token) == before && ContinuousClock.now < deadline { usleep(1000) }
                return id
            }
            let hostile: [(String?, [String], String)] = [
                ("1e20", [], "result"), ("-5", [], "upstreamError"), (nil, ["access_token"], "upstreamError"),
                ("1e400", ["refresh_token"], "result"),
            ]
            for (lifetime, omit, outcome) in hostile {
                expect(c.call("storeToken", storeParams("adverse", mint("user-adverse"))), "result", "storeToken")
                let fault = Fault.hostileAnswer(expiresIn: lifetime, omit: omit)
                fake.inject(fault, on: .token)
                expect(c.call("getToken", ["key": "adverse", "forceRefresh": true]), outcome, "refresh with \(fault)")
                fake.reset()
                // The next refresh sends the refresh token the hostile answer left, so the scan knows it too.
                expect(
                    c.call("getToken", ["key": "adverse", "forceRefresh": true]), "result", "refresh after \(fault)")
            }
            fake.inject(.endlessBody, on: .token)
            expect(c.call("getToken", ["key": "adverse", "forceRefresh": true]), "result", "refresh, an endless body")
            fake.reset()
            let saboteur = try? StoreSaboteur(store)
            let locked = refreshInFlight()
            report.check(saboteur?.lock() == true, "adversity: could not lock the store")
            expect(c.agent.response(locked), "storageError", "a refresh whose commit found the store locked")
            report.check(saboteur?.unlock() == true, "adversity: could not unlock the store")
            saboteur?.close()
            expect(c.call("getToken", ["key": "adverse"]), "result", "getToken once the store is back")
            for signal in [SIGUSR1, SIGALRM, SIGHUP] {
                let id = refreshInFlight()
                c.agent.kill(signal)
                expect(c.agent.response(id), "result", "a refresh in flight at signal \(signal)")
            }
        }
        // Swift's crash report prints registers and the memory they point at: the agent writes one line
        // instead and dies of the signal; no secret may be in what it wrote.
        try session("crash") { c in
            expect(c.call("getToken", ["key": "car-a", "forceRefresh": true]), "result", "getToken before the crash")
            expect(c.call("appToken", ["forceRefresh": true]), "result", "appToken before the crash")
            c.agent.kill(SIGSEGV)
            let status = c.agent.exitStatus(within: .seconds(30))
            report.check(
                status == -SIGSEGV,
                "crash: the agent did not die of SIGSEGV (exit status \(status.map(String.init) ?? "none"))")
            report.check(c.agent.stderr.contains("crashed (fatal signal)"), "crash: no crash line on stderr")
            report.check(!c.agent.stderr.contains("Program crashed"), "crash: Swift's crash report was written")
            c.agent.kill()
        }

        // Everything that went over the wire is a secret too, whoever minted it.
        for request in fake.requests {
            if let token = request.form["refresh_token"] { secrets.append(("refresh token", token)) }
            if let code = request.form["code"] { secrets.append(("authorization code", code)) }
            if let authorization = request.headers["authorization"], authorization.hasPrefix("Bearer ") {
                accessTokens.insert(String(authorization.dropFirst(7)))
            }
        }
        for run in runs {
            for message in run.agent.inbox.messages {
                if let token = message["result"]?["accessToken"]?.stringValue { accessTokens.insert(token) }
            }
        }
        var sealing = FakeSmartcar.Options()
        sealing.clientSecret = clientSecret
        if let rows = try? await Harness.storedRows(store, application: Self.clientID, secrets: sealing.storeSecrets) {
            for row in rows.values {
                secrets.append(("refresh token", row.refreshToken))
                accessTokens.insert(row.accessToken)
            }
        }

        var strict = SecretScanner()
        strict.addClientSecret(clientSecret, clientID: Self.clientID)
        strict.addClientSecret(wrongSecret, clientID: Self.clientID)
        for (label, value) in secrets { strict.add(label, value) }
        var everything = strict
        for token in accessTokens { everything.add("access token", token) }

        // The scanner itself must find what it is for: a planted leak in each form, and a 16-byte fragment.
        let planted = secrets.first { $0.label == "refresh token" }?.value ?? ""
        let plants = [
            clientSecret, clientSecret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "",
            Data(clientSecret.utf8).base64EncodedString(), basic, JSONValue.string(clientSecret).compactText,
            String(planted.dropFirst(9).prefix(16)), accessTokens.first ?? "",
        ]
        let found = plants.filter { !everything.scan(Array("<< \($0) >>".utf8), source: "plant").isEmpty }.count
        report.check(found == plants.count, "the scanner found only \(found) of \(plants.count) planted leaks")

        var hits: [SecretScanner.Hit] = []
        var scannedBytes = 0
        for run in runs {
            let stderr = run.agent.stderrBytes
            let raw = run.agent.rawOutput
            // The answers with access tokens masked where they are the answer; everything else as written.
            let answers = run.agent.inbox.messages.map { Self.maskingAnswers($0) }.joined(separator: "\n")
            scannedBytes += stderr.count + raw.count
            hits += everything.scan(stderr, source: "\(run.name): stderr")
            hits += strict.scan(raw, source: "\(run.name): stdout")
            hits += everything.scan(Array(answers.utf8), source: "\(run.name): messages and error payloads")
            report.check(run.agent.inbox.violations.isEmpty, "\(run.name): stdout carried non-protocol output")
        }
        for hit in hits { report.fail("secret found: \(hit)") }
        report.figure(
            "scenarios",
            "\(runs.count) agent runs (\(runs.map(\.name).joined(separator: ", "))), \(expectations) requests checked")
        report.figure(
            "secrets known",
            "\(everything.count) values (client secrets, Basic credentials, refresh and access tokens, codes), each in up to 7 forms"
        )
        report.figure("bytes scanned", "\(scannedBytes) (stdout and stderr at --log-level trace), plus every message")
        report.figure("scanner self-check", "\(found) of \(plants.count) planted leaks found")
        report.figure("secrets found", hits.count)
    }

    /// A message as text, `result.accessToken` replaced: the one place an access token belongs.
    static func maskingAnswers(_ message: JSONValue) -> String {
        guard case .object(var members) = message, case .object(var result)? = members["result"],
            result["accessToken"] != nil
        else {
            return message.compactText
        }
        result["accessToken"] = "(the answer)"
        members["result"] = .object(result)
        return JSONValue.object(members).compactText
    }

    static func hex(_ random: inout SeededGenerator) -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
    }
}
