import AgentSupport
import FakeSmartcar
import Foundation
import Testing
import WireFormats

@testable import SmartcarOAuth

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The real `CurlTransport` against the real `FakeSmartcar` on a loopback port: wire formats,
/// rotation, and every fault the fake can inject, mapped to the error table.
@Suite("End to end with FakeSmartcar")
struct FakeSmartcarEndToEndTests {
    static let basic = "Basic c2FuZGJveC1jbGllbnQtaWQ6c2FuZGJveC1jbGllbnQtc2VjcmV0"

    /// A fake on its own port and clients pointed at it.
    private final class Harness: Sendable {
        let fake: FakeSmartcar
        let sleeps = SleepRecorder()

        init(options: FakeSmartcar.Options = .init()) throws {
            // libcurl honours http_proxy and does not exempt loopback by itself.
            setenv("no_proxy", "127.0.0.1,localhost", 1)
            fake = try FakeSmartcar(options: options)
        }

        /// Call from a `defer`: it also keeps the harness alive to the end of the test.
        func stop() { fake.stop() }

        func configuration(
            timeout: Duration = .seconds(60), secret: String = "sandbox-client-secret"
        ) -> SmartcarConfiguration {
            SmartcarConfiguration(
                clientID: "sandbox-client-id", clientSecret: secret, connectOrigin: fake.origin,
                authOrigin: fake.origin, iamOrigin: fake.origin, apiOrigin: fake.origin, requestTimeout: timeout)
        }

        /// The default budget is generous: retries are skipped once it runs out, and a busy machine must not
        /// change which retries a test sees (the tests of deadlines pass their own).
        func client(timeout: Duration = .seconds(60), secret: String = "sandbox-client-secret") -> SmartcarClient {
            SmartcarClient(
                configuration: configuration(timeout: timeout, secret: secret), transport: CurlTransport.shared,
                retry: sleeps.policy())
        }
    }

    @Test func connectRedirectExchangeAndUser() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let configuration = harness.configuration()
        let redirectURI = "http://localhost:8000/callback"
        let connect = try ConnectURL.build(
            ConnectOptions(scope: ["read_odometer"], redirectURI: redirectURI), state: "st-1",
            configuration: configuration)
        // What the browser would do: follow Connect to the redirect (the transport does not follow redirects).
        let answer = try await CurlTransport.shared.send(
            HTTPRequest(method: "GET", url: connect), timeout: .seconds(5))
        #expect(answer.status == 302)
        let redirect = try ConnectRedirect.parse(try #require(answer.header("location")))
        guard case .code(let code, let state) = redirect else { Issue.record("no code in \(redirect)"); return }
        #expect(state == "st-1")

        let client = harness.client()
        let grant = try await client.exchangeCode(code, redirectURI: redirectURI)
        #expect(grant.tokenType == "Bearer")
        #expect(abs(grant.expiresAt.timeIntervalSinceNow - 7200) < 60)
        #expect(abs(grant.refreshExpiresAt.timeIntervalSinceNow - 60 * 86400) < 60)

        let exchange = try #require(harness.fake.requests.first { $0.endpoint == .token })
        #expect(exchange.method == "POST")
        #expect(exchange.path == "/oauth/token")
        #expect(exchange.headers["authorization"] == Self.basic)
        #expect(exchange.headers["content-type"] == "application/x-www-form-urlencoded")
        #expect(exchange.headers["accept"] == "application/json")
        #expect(exchange.headers["connection"] == "close", "POSTs never ride a reused connection")
        let userAgent = exchange.headers["user-agent"]
        #expect(userAgent?.hasPrefix("smartcar-auth-agent/\(AgentVersion.current) (Linux; ") == true)
        #expect(
            exchange.body == "grant_type=authorization_code&code=\(FormCoding.escape(code))"
                + "&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fcallback")
        #expect(exchange.form == ["grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI])

        #expect(try await client.userID(accessToken: grant.accessToken) == "user-1")
        let user = try #require(harness.fake.requests.last)
        #expect(user.method == "GET" && user.path == "/v2.0/user")
        #expect(user.headers["authorization"] == "Bearer \(grant.accessToken)")

        let reuse = await smartcarError { () async throws(SmartcarError) in
            try await client.exchangeCode(code, redirectURI: redirectURI)
        }
        #expect(reuse?.kind == .invalidGrant)
        #expect(reuse?.details["description"] == "Invalid or expired authorization code.")
        #expect(reuse?.details["requestId"]?.stringValue?.isEmpty == false)
    }

    @Test func exchangeWithTheWrongRedirectURIIsInvalidGrant() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let code = harness.fake.issueCode(redirectURI: "https://app.example/cb")
        let error = await smartcarError { () async throws(SmartcarError) in
            try await harness.client().exchangeCode(code, redirectURI: "https://evil.example/cb")
        }
        #expect(error?.kind == .invalidGrant)
        #expect(error?.details["error"] == "invalid_grant")
        #expect(error?.details["description"] == "Unauthorized redirect_uri: https://evil.example/cb")
    }

    @Test func exchangeFlagsTravelInTheQuery() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let code = harness.fake.issueCode()
        _ = try await harness.client().exchangeCode(code, redirectURI: nil, flags: ["country": "DE", "x": true])
        let request = try #require(harness.fake.requests.last)
        #expect(request.query == ["flags": "country:DE x:true"])
        #expect(request.form == ["grant_type": "authorization_code", "code": code])
    }

    @Test func refreshRotates() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let client = harness.client()
        let first = harness.fake.mintTokens(userID: "user-7")
        let second = try await client.refresh(first.refreshToken)
        #expect(second.refreshToken != first.refreshToken)
        let request = try #require(harness.fake.requests.last)
        #expect(request.form == ["grant_type": "refresh_token", "refresh_token": first.refreshToken])
        #expect(request.headers["authorization"] == Self.basic)
        let third = try await client.refresh(second.refreshToken)
        #expect(try await client.userID(accessToken: third.accessToken) == "user-7")

        let spent = await smartcarError { () async throws(SmartcarError) in try await client.refresh(first.refreshToken)
        }
        #expect(spent?.kind == .reauthRequired)
        #expect(spent?.details["description"] == "Invalid or expired refresh token.")
        #expect(!everythingShown(try #require(spent)).contains(first.refreshToken))
    }

    @Test func applicationToken() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let token = try await harness.client().applicationToken()
        #expect(abs(token.expiresAt.timeIntervalSinceNow - 3600) < 60)
        let request = try #require(harness.fake.requests.last)
        #expect(request.method == "POST" && request.path == "/oauth2/token")
        #expect(request.headers["authorization"] == nil)
        #expect(
            request.body
                == "grant_type=client_credentials&client_id=sandbox-client-id&client_secret=sandbox-client-secret")
    }

    @Test func basicRealm401IsInvalidClientAtOnce() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.inject(.invalidClientBasicRealm, on: .token)
        let error = await smartcarError { () async throws(SmartcarError) in
            try await harness.client(timeout: .seconds(60)).refresh(harness.fake.mintTokens().refreshToken)
        }
        // A challenge that hung would end in our deadline: upstreamUnavailable (timed out), not invalidClient.
        #expect(error?.kind == .invalidClient)
        #expect(error?.details["status"] == 401)
        #expect(error?.details["error"] == "invalid_client")
        #expect(error?.details["description"] == "Invalid client credentials.", "the challenge's body is kept")
        #expect(harness.fake.count(.token) == 1)
    }

    @Test func wrongSecretIsInvalidClient() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let client = harness.client(secret: "not-the-secret")
        let refresh = await smartcarError { () async throws(SmartcarError) in try await client.refresh("whatever") }
        #expect(refresh?.kind == .invalidClient)
        #expect(refresh?.details["description"] == "Invalid client credentials.")
        let app = await smartcarError { () async throws(SmartcarError) in try await client.applicationToken() }
        #expect(app?.kind == .invalidClient)
        #expect(!everythingShown(try #require(app)).contains("not-the-secret"))
    }

    @Test func rateLimitHonoursRetryAfter() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.inject(.rateLimited(retryAfter: "1"), on: .token)
        let grant = try await harness.client().refresh(harness.fake.mintTokens().refreshToken)
        #expect(!grant.accessToken.isEmpty)
        #expect(harness.sleeps.recorded == [.seconds(1)])
        #expect(harness.fake.count(.token) == 2)
    }

    @Test func rateLimitBeyondTheBudgetIsRateLimited() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.inject(.rateLimited(retryAfter: "120"), on: .appToken)
        let error = await smartcarError { () async throws(SmartcarError) in
            try await harness.client(timeout: .seconds(5)).applicationToken()
        }
        #expect(error?.kind == .rateLimited)
        #expect(error?.details["retryAfter"] == 120)
        #expect(error?.details["error"] == "RATE_LIMIT")
        #expect(error?.details["resolution"] == ["type": "RETRY_LATER"])
        #expect(error?.details["suggestedUserMessage"]?.stringValue?.isEmpty == false)
        #expect(harness.sleeps.recorded.isEmpty)
        #expect(harness.fake.count(.appToken) == 1)
    }

    @Test func html502OnExchangeIsNotRetried() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.inject(.htmlError(502), on: .token)
        let code = harness.fake.issueCode()
        let error = await smartcarError { () async throws(SmartcarError) in
            try await harness.client().exchangeCode(code, redirectURI: nil)
        }
        #expect(error?.kind == .upstreamUnavailable)
        #expect(error?.details["status"] == 502)
        #expect(error?.details["description"] == "non-JSON response (text/html)")
        #expect(error?.details["mayHaveReachedServer"] == true)
        #expect(error?.message.contains("the authorization code may have been used") == true)
        #expect(harness.fake.count(.token) == 1)
    }

    @Test func html502OnUserLookupIsRetried() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let tokens = harness.fake.mintTokens(userID: "user-9")
        harness.fake.inject(.htmlError(502), on: .user, times: 2)
        #expect(try await harness.client().userID(accessToken: tokens.accessToken) == "user-9")
        #expect(harness.fake.count(.user) == 3)
        #expect(harness.sleeps.recorded == [.milliseconds(200), .milliseconds(400)])
    }

    @Test func v2ServerErrorsExhaustRetries() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let body =
            #"{"type":"SERVER","code":"INTERNAL","description":"Internal error.","statusCode":500,"requestId":"req-500","resolution":null}"#
        harness.fake.inject(.status(500, body: body), on: .appToken, times: 3)
        let error = await smartcarError { () async throws(SmartcarError) in
            try await harness.client().applicationToken()
        }
        #expect(error?.kind == .upstreamUnavailable)
        #expect(error?.details["retried"] == 2)
        #expect(error?.details["requestId"] == "req-500")
        #expect(error?.details["resolution"] == nil)
    }

    @Test func stallHitsTheTimeout() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.inject(.stall, on: .appToken)
        let started = ContinuousClock.now
        let error = await smartcarError { () async throws(SmartcarError) in
            try await harness.client(timeout: .milliseconds(400)).applicationToken()
        }
        let elapsed = ContinuousClock.now - started
        #expect(error?.kind == .upstreamUnavailable)
        #expect(error?.details["network"] == "timedOut")
        // The bound is loose on purpose: it tells "the timeout fired" from "the stall hung", whatever the load.
        #expect(elapsed >= .milliseconds(350) && elapsed < .seconds(120), "\(elapsed) \(String(describing: error))")
    }

    @Test func cancellingAStalledCallAnswersAtOnce() async throws {
        let arrived = AsyncStream<Void>.makeStream()
        var options = FakeSmartcar.Options()
        options.log = { line in if line.contains("stalled") { arrived.continuation.yield() } }
        let harness = try Harness(options: options)
        defer { harness.stop() }
        harness.fake.inject(.stall, on: .appToken)
        let client = harness.client(timeout: .seconds(600))
        let call = Task {
            await smartcarError { () async throws(SmartcarError) in try await client.applicationToken() }
        }
        var iterator = arrived.stream.makeAsyncIterator()
        await iterator.next()
        let started = ContinuousClock.now
        call.cancel()
        let error = await call.value
        // Far below the 600 s timeout it would otherwise wait for.
        #expect(ContinuousClock.now - started < .seconds(120))
        #expect(error?.kind == .cancelled)
        #expect(harness.fake.count(.appToken) == 1)
    }

    @Test func droppedRefreshIsNotRetried() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let client = harness.client()
        // A first call leaves a keep-alive connection in the pool, the case where libcurl would resend.
        _ = try await client.applicationToken()
        harness.fake.inject(.drop, on: .token)
        let error = await smartcarError { () async throws(SmartcarError) in
            try await client.refresh(harness.fake.mintTokens().refreshToken)
        }
        #expect(error?.kind == .upstreamUnavailable)
        #expect(
            error?.details["network"] == "connectionLost",
            "not timedOut: a dropped connection must not wait for the deadline")
        #expect(error?.details["mayHaveReachedServer"] == true)
        #expect(error?.message.contains("the refresh may have reached Smartcar") == true)
        #expect(harness.fake.count(.token) == 1)
    }

    /// A GET (the user lookup) must not leave a keep-alive connection for a later POST to reuse: when that
    /// connection died, libcurl resent the POST on a new one and it hung until the deadline (found by the
    /// faults suite of agent-reliability).
    @Test func aDroppedPostAfterAGetFailsAtOnce() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let client = harness.client()
        _ = try await client.userID(accessToken: harness.fake.mintTokens().accessToken)
        harness.fake.inject(.drop, on: .appToken)
        // A resend that hung would end in our deadline: the call would throw (timed out) instead of retrying.
        _ = try await client.applicationToken()
        #expect(harness.fake.count(.appToken) == 2)
        _ = try await client.userID(accessToken: harness.fake.mintTokens().accessToken)
        harness.fake.inject(.drop, on: .token)
        let error = await smartcarError { () async throws(SmartcarError) in
            try await client.refresh(harness.fake.mintTokens().refreshToken)
        }
        #expect(
            error?.details["network"] == "connectionLost",
            "not timedOut: a dropped connection must not wait for the deadline")
    }

    @Test func refreshAnsweredByNobodyMayStillHaveRotated() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let client = harness.client()
        let tokens = harness.fake.mintTokens()
        harness.fake.inject(.dropAfterHandling, on: .token)
        let lost = await smartcarError { () async throws(SmartcarError) in try await client.refresh(tokens.refreshToken)
        }
        #expect(lost?.kind == .upstreamUnavailable)
        #expect(lost?.details["mayHaveReachedServer"] == true)
        // Why it is not retried blindly: the fake processed it, so the old token is already spent.
        let again = await smartcarError { () async throws(SmartcarError) in
            try await client.refresh(tokens.refreshToken)
        }
        #expect(again?.kind == .reauthRequired)
    }

    @Test func droppedUserLookupIsRetried() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let tokens = harness.fake.mintTokens(userID: "user-3")
        let client = harness.client()
        harness.fake.inject(.drop, on: .user)
        #expect(try await client.userID(accessToken: tokens.accessToken) == "user-3")
        #expect(harness.fake.count(.user) == 2)
    }

    @Test func connectionRefusedIsRetriedAndSaysTheRequestNeverLeft() async throws {
        let listener = try ClosedPort()
        defer { listener.close() }
        let sleeps = SleepRecorder()
        let origin = URL(string: "http://127.0.0.1:\(listener.port)")!
        // A budget no busy machine exhausts: the pauses are recorded, not slept.
        let configuration = SmartcarConfiguration(
            clientID: "id", clientSecret: "secret", authOrigin: origin, requestTimeout: .seconds(60))
        let client = SmartcarClient(configuration: configuration, retry: sleeps.policy())
        let error = await smartcarError { () async throws(SmartcarError) in
            try await client.exchangeCode("code", redirectURI: nil)
        }
        #expect(error?.kind == .upstreamUnavailable)
        #expect(error?.details["network"] == "cannotConnect")
        #expect(error?.details["mayHaveReachedServer"] == false)
        #expect(error?.details["retried"] == 2)
        #expect(sleeps.recorded.count == 2)
    }

    @Test func userLookupWithAnUnknownTokenKeepsSmartcarsWords() async throws {
        let harness = try Harness()
        defer { harness.stop() }
        let error = await smartcarError { () async throws(SmartcarError) in
            try await harness.client().userID(accessToken: "not-a-token")
        }
        #expect(error?.kind == .upstreamError)
        #expect(error?.details["status"] == 401)
        #expect(error?.details["error"] == "AUTHENTICATION")
        #expect(error?.details["resolution"] == ["type": "REAUTHENTICATE"])
        #expect(!everythingShown(try #require(error)).contains("not-a-token"))
    }
}

/// A loopback port that refuses connections: bound (so nobody else takes it) but not listening.
private struct ClosedPort {
    let fd: Int32
    let port: UInt16

    init() throws {
        guard let (fd, port) = boundLoopbackSocket() else {
            throw TransportError(.other, detail: "could not bind a loopback port")
        }
        self.fd = fd
        self.port = port
    }

    func close() { _ = Glibc.close(fd) }
}
