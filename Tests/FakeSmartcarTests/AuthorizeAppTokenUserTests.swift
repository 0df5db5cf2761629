import Foundation
import Testing
import WireFormats

@testable import FakeSmartcar

@Suite struct AuthorizeTests {
    private func query(_ location: String?) throws -> [String: String] {
        let text = try #require(location)
        let items = try #require(URLComponents(string: text)?.queryItems)
        return Dictionary(items.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
    }

    @Test func approvesAndRedirectsWithACodeAndTheStateEchoed() async throws {
        try await withFake { fake in
            let target =
                "/oauth/authorize?response_type=code&client_id=sandbox-client-id"
                + "&redirect_uri=https%3A%2F%2Fexample.com%2Fcb%3Fx%3D1&scope=read_odometer+read_vin&state=a+b%2Bc%26d%3D%C3%A9&fake_user=carol"
            let response = try await http(fake, "GET", target)
            #expect(response.status == 302)
            #expect(response.headers["content-type"]?.hasPrefix("text/html") == true)
            let location = try #require(response.headers["location"])
            #expect(location.hasPrefix("https://example.com/cb?x=1&code=fake-code-"))
            let parameters = try query(location)
            #expect(parameters["state"] == "a b+c&d=é")
            #expect(parameters["x"] == "1")
            let code = try #require(parameters["code"])

            let exchange = try await tokenRequest(
                fake,
                [
                    ("grant_type", "authorization_code"), ("code", code),
                    ("redirect_uri", "https://example.com/cb?x=1"),
                ])
            #expect(exchange.status == 200)
            let user = try await http(
                fake, "GET", "/v2.0/user",
                headers: [("Authorization", "Bearer \(try #require(try exchange.string("access_token")))")])
            #expect(try user.string("id") == "carol")
        }
    }

    @Test func usesTheDefaultRedirectURIWhenTheQueryHasNone() async throws {
        try await withFake { fake in
            let response = try await http(
                fake, "GET", "/oauth/authorize?response_type=code&client_id=sandbox-client-id")
            #expect(response.status == 302)
            let location = try #require(response.headers["location"])
            #expect(location.hasPrefix("http://localhost:8000/callback?code=fake-code-"))
            #expect(try query(location)["state"] == nil)
        }
    }

    @Test func fakeErrorRedirectsWithConnectsError() async throws {
        try await withFake { fake in
            let denied = try await http(
                fake, "GET",
                "/oauth/authorize?response_type=code&client_id=sandbox-client-id"
                    + "&redirect_uri=https%3A%2F%2Fexample.com%2Fcb&state=s1&fake_error=access_denied")
            #expect(denied.status == 302)
            let parameters = try query(denied.headers["location"])
            #expect(parameters == ["error": "access_denied", "error_description": "User denied access", "state": "s1"])

            let incompatible = try await http(
                fake, "GET",
                "/oauth/authorize?response_type=code&client_id=sandbox-client-id"
                    + "&fake_error=vehicle_incompatible")
            let details = try query(incompatible.headers["location"])
            #expect(details["error"] == "vehicle_incompatible")
            #expect(details["make"] == "TESLA")
            #expect(details["vin"] != nil)
        }
    }

    @Test func refusesAnUnknownClientOrResponseTypeWithoutRedirecting() async throws {
        try await withFake { fake in
            let badClient = try await http(fake, "GET", "/oauth/authorize?response_type=code&client_id=other")
            #expect(badClient.status == 400)
            #expect(badClient.headers["location"] == nil)
            let badType = try await http(
                fake, "GET", "/oauth/authorize?response_type=token&client_id=sandbox-client-id")
            #expect(badType.status == 400)
        }
    }
}

@Suite struct AppTokenTests {
    @Test func clientCredentialsInTheFormBodyGetAnHourTokenWithoutRefreshToken() async throws {
        try await withFake { fake in
            let response = try await http(
                fake, "POST", "/oauth2/token", headers: [formType],
                body: FormCoding.encode([
                    ("grant_type", "client_credentials"), ("client_id", "sandbox-client-id"),
                    ("client_secret", "sandbox-client-secret"),
                ]))
            #expect(response.status == 200)
            let body = try response.object()
            #expect(Set(body.keys) == ["access_token", "token_type", "expires_in"])
            #expect(body["expires_in"] as? Int == 3600)
            #expect(body["token_type"] as? String == "Bearer")
            #expect(fake.count(.appToken) == 1)
            #expect(fake.count(.token) == 0)
        }
    }

    @Test func badCredentialsAre401AndAMissingGrantTypeIs400() async throws {
        try await withFake { fake in
            let wrong = try await http(
                fake, "POST", "/oauth2/token", headers: [formType],
                body: FormCoding.encode([
                    ("grant_type", "client_credentials"), ("client_id", "sandbox-client-id"), ("client_secret", "nope"),
                ]))
            #expect(wrong.status == 401)
            #expect(try wrong.string("error") == "invalid_client")
            let missing = try await http(
                fake, "POST", "/oauth2/token", headers: [formType],
                body: FormCoding.encode([
                    ("client_id", "sandbox-client-id"), ("client_secret", "sandbox-client-secret"),
                ]))
            #expect(missing.status == 400)
            #expect(try missing.string("error") == "invalid_request")
        }
    }
}

@Suite struct UserEndpointTests {
    @Test func answersTheUserOfATokenItIssued() async throws {
        try await withFake { fake in
            let (accessToken, _) = fake.mintTokens(userID: "user-42")
            let response = try await http(
                fake, "GET", "/v2.0/user", headers: [("Authorization", "Bearer \(accessToken)")])
            #expect(response.status == 200)
            #expect(try response.object().count == 1)
            #expect(try response.string("id") == "user-42")
        }
    }

    @Test func anUnknownMissingOrExpiredTokenGetsAV2AuthenticationError() async throws {
        let clock = TestClock()
        var options = FakeSmartcar.Options()
        options.now = { clock.now() }
        options.accessTokenLifetime = 100
        try await withFake(options) { fake in
            let (accessToken, _) = fake.mintTokens()
            clock.advance(101)
            for headers in [
                [("Authorization", "Bearer \(accessToken)")], [("Authorization", "Bearer fake-at-unknown")], [],
            ] {
                let response = try await http(fake, "GET", "/v2.0/user", headers: headers)
                #expect(response.status == 401)
                let body = try response.object()
                #expect(body["type"] as? String == "AUTHENTICATION")
                #expect(body["code"] is NSNull)
                #expect(body["statusCode"] as? Int == 401)
                #expect(body["requestId"] as? String == response.headers["sc-request-id"])
                #expect((body["resolution"] as? [String: Any])?["type"] as? String == "REAUTHENTICATE")
            }
        }
    }
}
