import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing

/// Connect, code exchange, application tokens and every upstream error kind, end to end: the real binary
/// against the fake Smartcar.
@Suite struct OAuthThroughAgentTests {
    let fake: FakeSmartcar
    let agent: AgentProcess

    init() throws {
        fake = try FakeSmartcar()
        agent = try AgentProcess(
            arguments: ["--store", "memory", "--request-timeout", "5"], environment: fake.agentEnvironment)
    }

    /// Follows a Connect URL on the fake the way a browser would, returning where Connect redirects to.
    func followConnect(_ url: String) throws -> String {
        try FakeBrowser.redirect(for: url)
    }

    @Test func handleRedirectExchangesTheCodeAndStoresTheTokens() async throws {
        let built = try await agent.call(id: 1, "buildConnectURL", ["key": "car-1", "scope": ["read_odometer"]])
        let url = try #require(built["result"]?["url"]?.stringValue)
        let redirect = try followConnect(url)
        let exchanged = try await agent.call(id: 2, "handleRedirect", ["url": .string(redirect)])
        #expect(exchanged["result"]?["key"] == "car-1")
        #expect(exchanged["result"]?["tokenType"] == "Bearer")
        #expect(exchanged["result"]?["refreshToken"] == nil)
        let token = try await agent.call(id: 3, "getToken", ["key": "car-1"])
        #expect(token["result"]?["accessToken"] == exchanged["result"]?["accessToken"])
        #expect(fake.count(.token) == 1)
    }

    @Test func exchangeWithoutKeyUsesTheSmartcarUserID() async throws {
        let code = fake.issueCode(redirectURI: "http://localhost:8000/callback", userID: "user-42")
        let exchanged = try await agent.call(id: 1, "exchangeCode", ["code": .string(code)])
        #expect(exchanged["result"]?["key"] == "user-42")
        #expect(fake.count(.user) == 1)
    }

    @Test func accessDeniedBecomesConnectError() async throws {
        let built = try await agent.call(id: 1, "buildConnectURL", [:])
        let state = try #require(built["result"]?["state"]?.stringValue)
        let redirect =
            "http://localhost:8000/callback?error=access_denied&error_description=User+denied+access&state=\(state)"
        let reply = try await agent.call(id: 2, "handleRedirect", ["url": .string(redirect)])
        #expect(reply.errorKind == "connectError")
        #expect(reply["error"]?["data"]?["error"] == "access_denied")
        #expect(fake.count(.token) == 0)
    }

    @Test func unknownAndReusedStatesAreRefused() async throws {
        let unknown = try await agent.call(
            id: 1, "handleRedirect", ["url": "http://localhost:8000/callback?code=abc&state=forged"])
        #expect(unknown.errorKind == "stateMismatch")
        let built = try await agent.call(id: 2, "buildConnectURL", [:])
        let redirect = try followConnect(try #require(built["result"]?["url"]?.stringValue))
        #expect(try await agent.call(id: 3, "handleRedirect", ["url": .string(redirect)])["result"] != nil)
        let reused = try await agent.call(id: 4, "handleRedirect", ["url": .string(redirect)])
        #expect(reused.errorKind == "stateMismatch")
        #expect(fake.count(.token) == 1)
    }

    @Test func appTokenIsCachedAndShared() async throws {
        for id in 1...20 { agent.send(id: id, "appToken") }
        try await agent.waitForResponses(count: 20)
        let tokens = Set((1...20).compactMap { agent.responses(id: $0).first?["result"]?["accessToken"]?.stringValue })
        #expect(tokens.count == 1)
        #expect(fake.count(.appToken) == 1)
        #expect(
            try await agent.call(id: 30, "appToken", ["forceRefresh": true])["result"]?["accessToken"]?.stringValue.map(
                tokens.contains) == false)
    }

    @Test(arguments: [
        (Fault.invalidClientBasicRealm, "invalidClient"),
        (
            Fault.status(401, body: #"{"error":"invalid_client","error_description":"Invalid client credentials."}"#),
            "invalidClient"
        ),
        (Fault.htmlError(502), "upstreamUnavailable"),
        (
            Fault.status(400, body: #"{"error":"invalid_request","error_description":"Missing grant_type"}"#),
            "upstreamError"
        ),
        (Fault.drop, "upstreamUnavailable"),
    ])
    func appTokenFaultsBecomeTypedErrors(fault: Fault, kind: String) async throws {
        fake.inject(fault, on: .appToken, times: 10)
        let reply = try await agent.call(id: 1, "appToken")
        #expect(reply.errorKind == kind, "\(reply)")
        // Answered for what it is, not after hanging until the request budget ran out.
        #expect(reply["error"]?["data"]?["network"] != "timedOut", "\(reply)")
        #expect(!agent.stderr.contains(fake.options.clientSecret))
    }

    @Test func rateLimitHonoursRetryAfter() async throws {
        fake.inject(.rateLimited(retryAfter: "1"), on: .appToken)
        let started = ContinuousClock.now
        let reply = try await agent.call(id: 1, "appToken")
        #expect(reply["result"]?["accessToken"] != nil)
        #expect(ContinuousClock.now - started >= .seconds(1))
        #expect(fake.count(.appToken) == 2)
    }

    @Test func rateLimitBeyondTheBudgetIsRateLimited() async throws {
        fake.inject(.rateLimited(retryAfter: "60"), on: .appToken, times: 5)
        let reply = try await agent.call(id: 1, "appToken")
        #expect(reply.errorKind == "rateLimited")
        #expect(reply["error"]?["data"]?["retryAfter"]?.intValue == 60)
    }

    @Test func invalidCodeIsInvalidGrant() async throws {
        let reply = try await agent.call(id: 1, "exchangeCode", ["code": "not-a-code", "key": "k"])
        #expect(reply.errorKind == "invalidGrant")
        #expect(reply["error"]?["data"]?["status"]?.intValue == 400)
    }

    @Test func aStalledExchangeTimesOutAsUpstreamUnavailableAndIsNotRetried() async throws {
        fake.inject(.stall, on: .token)
        let code = fake.issueCode(redirectURI: "http://localhost:8000/callback")
        let reply = try await agent.call(id: 1, "exchangeCode", ["code": .string(code), "key": "k"])
        #expect(reply.errorKind == "upstreamUnavailable")
        #expect(reply["error"]?["data"]?["mayHaveReachedServer"] == true)
        #expect(fake.count(.token) == 1)
        #expect(!agent.stderr.contains(code))
    }

    @Test func missingCredentialsAnswerConfigurationError() async throws {
        let bare = try AgentProcess(arguments: ["--store", "memory"])
        let reply = try await bare.call(id: 1, "appToken")
        #expect(reply.errorKind == "configurationError")
        #expect(reply["error"]?["message"]?.stringValue?.contains("SMARTCAR_CLIENT_ID") == true)
    }

    @Test func credentialsAreNeverSentToAPlainHTTPOriginOffLoopback() async throws {
        var environment = fake.agentEnvironment
        environment["SMARTCAR_AUTH_ORIGIN"] = "http://example.com"
        environment["SMARTCAR_IAM_ORIGIN"] = "http://example.com"
        let agent = try AgentProcess(arguments: ["--store", "memory"], environment: environment)
        let exchange = try await agent.call(id: 1, "exchangeCode", ["code": "c", "key": "k"])
        #expect(exchange.errorKind == "configurationError")
        #expect(exchange["error"]?["message"]?.stringValue?.contains("https") == true)
        let app = try await agent.call(id: 2, "appToken")
        #expect(app.errorKind == "configurationError")
    }
}
