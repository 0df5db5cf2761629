import AgentSupport
import Foundation
import Testing

@testable import SmartcarOAuth

/// What goes on the wire, checked against a recording transport.
@Suite("Wire format")
struct WireTests {
    @Test func exchangeWithRedirectURI() async throws {
        let transport = StubTransport(Stub.tokenPair)
        let grant = try await Fixture.client(transport).exchangeCode(
            "code/1 2", redirectURI: "https://example.com/home")
        let request = try #require(transport.requests.first)
        #expect(request.method == "POST")
        #expect(request.url.absoluteString == "https://auth.smartcar.com/oauth/token")
        #expect(request.headers["Authorization"] == Fixture.basic)
        #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded")
        #expect(request.headers["Accept"] == "application/json")
        #expect(
            request.bodyText
                == "grant_type=authorization_code&code=code%2F1+2&redirect_uri=https%3A%2F%2Fexample.com%2Fhome")
        #expect(grant.accessToken == "AT-1" && grant.refreshToken == "RT-1" && grant.tokenType == "Bearer")
        #expect(grant.expiresAt == FixedClock().date + 7200)
        #expect(grant.refreshExpiresAt == FixedClock().date + 60 * 86400)
    }

    @Test func exchangeWithoutRedirectURIOmitsIt() async throws {
        let transport = StubTransport(Stub.tokenPair)
        _ = try await Fixture.client(transport).exchangeCode("abc", redirectURI: nil)
        #expect(transport.requests.first?.bodyText == "grant_type=authorization_code&code=abc")
    }

    @Test func exchangeFallsBackToConfiguredRedirectURI() async throws {
        let transport = StubTransport(Stub.tokenPair)
        var configuration = Fixture.configuration
        configuration.redirectURI = "http://localhost:8000/callback"
        _ = try await Fixture.client(transport, configuration: configuration).exchangeCode("abc", redirectURI: nil)
        #expect(
            transport.requests.first?.bodyText
                == "grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fcallback")
    }

    @Test func exchangeFlagsGoInTheQuery() async throws {
        let transport = StubTransport(Stub.tokenPair)
        _ = try await Fixture.client(transport).exchangeCode(
            "abc", redirectURI: nil, flags: ["country": "DE", "x": true])
        let request = try #require(transport.requests.first)
        #expect(request.url.absoluteString == "https://auth.smartcar.com/oauth/token?flags=country%3ADE+x%3Atrue")
        #expect(request.bodyText == "grant_type=authorization_code&code=abc")
    }

    @Test func refresh() async throws {
        let transport = StubTransport(Stub.tokenPair)
        let grant = try await Fixture.client(transport).refresh("rt+/=")
        let request = try #require(transport.requests.first)
        #expect(request.method == "POST")
        #expect(request.url.absoluteString == "https://auth.smartcar.com/oauth/token")
        #expect(request.headers["Authorization"] == Fixture.basic)
        #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded")
        #expect(request.bodyText == "grant_type=refresh_token&refresh_token=rt%2B%2F%3D")
        #expect(grant.refreshToken == "RT-1")
    }

    @Test func applicationTokenSendsCredentialsInTheBodyNotBasic() async throws {
        let transport = StubTransport(Stub.appToken)
        let token = try await Fixture.client(transport).applicationToken()
        let request = try #require(transport.requests.first)
        #expect(request.method == "POST")
        #expect(request.url.absoluteString == "https://iam.smartcar.com/oauth2/token")
        #expect(request.header("Authorization") == nil)
        #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded")
        #expect(request.bodyText == "grant_type=client_credentials&client_id=CID&client_secret=s3cr3t-value")
        #expect(token.accessToken == "APP-1")
        #expect(token.expiresAt == FixedClock().date + 3600)
    }

    @Test func userIDSendsBearer() async throws {
        let transport = StubTransport(Stub.user)
        let id = try await Fixture.client(transport).userID(accessToken: "AT-9")
        let request = try #require(transport.requests.first)
        #expect(request.method == "GET")
        #expect(request.url.absoluteString == "https://api.smartcar.com/v2.0/user")
        #expect(request.headers["Authorization"] == "Bearer AT-9")
        #expect(request.body == nil)
        #expect(id == "user-42")
    }

    @Test func userAgentShape() async throws {
        let transport = StubTransport(Stub.user, Stub.user)
        _ = try await Fixture.client(transport).userID(accessToken: "AT")
        let custom = SmartcarClient(configuration: Fixture.configuration, transport: transport, agentVersion: "9.8.7")
        _ = try await custom.userID(accessToken: "AT")
        let agents = transport.requests.map { $0.headers["User-Agent"] ?? "" }
        let shape = try Regex(#"smartcar-auth-agent/(\d+\.\d+\.\d+) \(Linux; (x86_64|aarch64)\) Swift \d+\.\d+\+?"#)
        #expect(agents.allSatisfy { (try? shape.wholeMatch(in: $0)) != nil }, "\(agents)")
        #expect(agents[0].hasPrefix("smartcar-auth-agent/\(AgentVersion.current) "))
        #expect(agents[1].hasPrefix("smartcar-auth-agent/9.8.7 "))
    }

    @Test func configuredOriginsAreUsed() async throws {
        let transport = StubTransport(Stub.tokenPair, Stub.appToken, Stub.user)
        var configuration = Fixture.configuration
        configuration.authOrigin = URL(string: "http://127.0.0.1:9001")!
        configuration.iamOrigin = URL(string: "http://localhost:9002")!
        configuration.apiOrigin = URL(string: "http://[::1]:9003")!
        let client = Fixture.client(transport, configuration: configuration)
        _ = try await client.refresh("r")
        _ = try await client.applicationToken()
        _ = try await client.userID(accessToken: "a")
        #expect(
            transport.requests.map(\.url.absoluteString) == [
                "http://127.0.0.1:9001/oauth/token", "http://localhost:9002/oauth2/token",
                "http://[::1]:9003/v2.0/user",
            ])
    }

    @Test func eachCallGetsTheWholeBudgetAsItsTimeout() async throws {
        let transport = StubTransport(Stub.user)
        var configuration = Fixture.configuration
        configuration.requestTimeout = .seconds(7)
        _ = try await Fixture.client(transport, configuration: configuration).userID(accessToken: "a")
        let timeout = try #require(transport.timeouts.first)
        #expect(timeout <= .seconds(7) && timeout > .seconds(6))
    }

    @Test func requestDescriptionHidesHeadersAndBody() {
        let request = HTTPRequest(
            method: "POST", url: URL(string: "https://auth.smartcar.com/oauth/token")!,
            headers: ["Authorization": Fixture.basic], body: Data("refresh_token=SECRET".utf8))
        #expect(request.description == "POST https://auth.smartcar.com/oauth/token")
    }
}
