import Foundation
import Testing
import WireFormats

@testable import FakeSmartcar

@Suite struct TokenEndpointTests {
    @Test func exchangesAnIssuedCodeOnceForATokenPair() async throws {
        try await withFake { fake in
            let code = fake.issueCode(redirectURI: "https://example.com/cb", userID: "alice")
            let form = [
                ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://example.com/cb"),
            ]
            let response = try await tokenRequest(fake, form, target: "/oauth/token?flags=country%3ADE+b%3Atrue")
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.hasPrefix("application/json") == true)
            #expect(response.headers["sc-request-id"]?.isEmpty == false)
            let body = try response.object()
            #expect((body["access_token"] as? String)?.hasPrefix("fake-at-") == true)
            #expect((body["refresh_token"] as? String)?.hasPrefix("fake-rt-") == true)
            #expect(body["token_type"] as? String == "Bearer")
            #expect(body["expires_in"] as? Int == 7200)

            let user = try await http(
                fake, "GET", "/v2.0/user",
                headers: [("Authorization", "Bearer \(try #require(body["access_token"] as? String))")])
            #expect(try user.string("id") == "alice")

            let again = try await tokenRequest(fake, form)
            #expect(again.status == 400)
            #expect(try again.string("error") == "invalid_grant")
            #expect(try again.string("error_description") == "Invalid or expired authorization code.")

            let recorded = try #require(fake.requests.first)
            #expect(recorded.endpoint == .token)
            #expect(recorded.query["flags"] == "country:DE b:true")
            #expect(recorded.form["code"] == code)
            #expect(recorded.headers["content-type"] == "application/x-www-form-urlencoded")
            #expect(fake.count(.token) == 2)
        }
    }

    @Test func refusesARedirectURIOtherThanTheOneTheCodeWasIssuedFor() async throws {
        try await withFake { fake in
            let code = fake.issueCode(redirectURI: "https://example.com/cb")
            for redirect in ["https://evil.example/cb", nil] as [String?] {
                var form = [("grant_type", "authorization_code"), ("code", code)]
                if let redirect { form.append(("redirect_uri", redirect)) }
                let response = try await tokenRequest(fake, form)
                #expect(response.status == 400)
                #expect(try response.string("error") == "invalid_grant")
                #expect(try response.string("error_description")?.hasPrefix("Unauthorized redirect_uri") == true)
            }
            // A mismatch does not spend the code.
            let good = try await tokenRequest(
                fake,
                [
                    ("grant_type", "authorization_code"), ("code", code),
                    ("redirect_uri", "https://example.com/cb"),
                ])
            #expect(good.status == 200)
        }
    }

    @Test func aCodeIssuedWithoutRedirectURIAcceptsAnyAndUnknownCodesAreRefused() async throws {
        try await withFake { fake in
            let code = fake.issueCode()
            let ok = try await tokenRequest(fake, [("grant_type", "authorization_code"), ("code", code)])
            #expect(ok.status == 200)
            let unknown = try await tokenRequest(
                fake, [("grant_type", "authorization_code"), ("code", "fake-code-nope")])
            #expect(unknown.status == 400)
            #expect(try unknown.string("error") == "invalid_grant")
            let missing = try await tokenRequest(fake, [("grant_type", "authorization_code")])
            #expect(missing.status == 400)
            #expect(try missing.string("error") == "invalid_request")
        }
    }

    @Test func codesExpire() async throws {
        let clock = TestClock()
        var options = FakeSmartcar.Options()
        options.now = { clock.now() }
        try await withFake(options) { fake in
            let code = fake.issueCode()
            clock.advance(601)
            let response = try await tokenRequest(fake, [("grant_type", "authorization_code"), ("code", code)])
            #expect(response.status == 400)
            #expect(try response.string("error") == "invalid_grant")
        }
    }

    @Test func refreshRotatesAndAUsedRefreshTokenIsDeadAtOnce() async throws {
        try await withFake { fake in
            let (_, refreshToken) = fake.mintTokens(userID: "bob")
            let first = try await tokenRequest(
                fake, [("grant_type", "refresh_token"), ("refresh_token", refreshToken)])
            #expect(first.status == 200)
            let rotated = try #require(try first.string("refresh_token"))
            #expect(rotated != refreshToken)

            let reuse = try await tokenRequest(
                fake, [("grant_type", "refresh_token"), ("refresh_token", refreshToken)])
            #expect(reuse.status == 400)
            #expect(try reuse.string("error") == "invalid_grant")
            #expect(try reuse.string("error_description") == "Invalid or expired refresh token.")

            let next = try await tokenRequest(fake, [("grant_type", "refresh_token"), ("refresh_token", rotated)])
            #expect(next.status == 200)
            let user = try await http(
                fake, "GET", "/v2.0/user",
                headers: [("Authorization", "Bearer \(try #require(try next.string("access_token")))")])
            #expect(try user.string("id") == "bob")
        }
    }

    @Test func graceAllowsReuseWithinTheWindowOnly() async throws {
        let clock = TestClock()
        var options = FakeSmartcar.Options()
        options.refreshReuse = .grace(60)
        options.now = { clock.now() }
        try await withFake(options) { fake in
            let (_, refreshToken) = fake.mintTokens()
            let form = [("grant_type", "refresh_token"), ("refresh_token", refreshToken)]
            let first = try await tokenRequest(fake, form)
            #expect(first.status == 200)
            clock.advance(59)
            let withinGrace = try await tokenRequest(fake, form)
            #expect(withinGrace.status == 200)
            #expect(try withinGrace.string("refresh_token") != first.string("refresh_token"))
            clock.advance(2)
            let afterGrace = try await tokenRequest(fake, form)
            #expect(afterGrace.status == 400)
            #expect(try afterGrace.string("error") == "invalid_grant")
        }
    }

    @Test func refreshTokensExpire() async throws {
        let clock = TestClock()
        var options = FakeSmartcar.Options()
        options.now = { clock.now() }
        try await withFake(options) { fake in
            let (_, refreshToken) = fake.mintTokens()
            clock.advance(60 * 24 * 3600 + 1)
            let response = try await tokenRequest(
                fake, [("grant_type", "refresh_token"), ("refresh_token", refreshToken)])
            #expect(response.status == 400)
            #expect(try response.string("error") == "invalid_grant")
        }
    }

    @Test func wrongOrMissingClientCredentialsAre401InvalidClient() async throws {
        try await withFake { fake in
            let (_, refreshToken) = fake.mintTokens()
            let form = [("grant_type", "refresh_token"), ("refresh_token", refreshToken)]
            for auth in [
                basic("sandbox-client-id", "wrong"), basic("other", "sandbox-client-secret"),
                ("Authorization", "Bearer x"),
            ] {
                let response = try await tokenRequest(fake, form, auth: auth)
                #expect(response.status == 401)
                #expect(try response.string("error") == "invalid_client")
                #expect(try response.string("error_description") == "Invalid client credentials.")
                #expect(response.headers["www-authenticate"] == nil)
            }
            let none = try await http(fake, "POST", "/oauth/token", headers: [formType], body: FormCoding.encode(form))
            #expect(none.status == 401)
            // Refused requests did not spend the refresh token.
            #expect(try await tokenRequest(fake, form).status == 200)
        }
    }

    @Test func malformedTokenRequestsAre400() async throws {
        try await withFake { fake in
            let auth = basic(fake.options.clientID, fake.options.clientSecret)
            let json = try await http(
                fake, "POST", "/oauth/token", headers: [auth, ("Content-Type", "application/json")],
                body: #"{"grant_type":"refresh_token"}"#)
            #expect(json.status == 400)
            #expect(try json.string("error") == "invalid_request")
            let noGrant = try await tokenRequest(fake, [("code", "x")])
            #expect(noGrant.status == 400)
            #expect(try noGrant.string("error") == "invalid_request")
            let odd = try await tokenRequest(fake, [("grant_type", "password")])
            #expect(odd.status == 400)
            #expect(try odd.string("error") == "unsupported_grant_type")
            let get = try await http(fake, "GET", "/oauth/token")
            #expect(get.status == 405)
        }
    }

    @Test func reportsLivenessAndRevocation() async throws {
        try await withFake { fake in
            let (accessToken, refreshToken) = fake.mintTokens(userID: "dora")
            let other = fake.mintTokens(userID: "eve")
            #expect(fake.isLive(refreshToken: refreshToken))
            let rotated = try await tokenRequest(
                fake, [("grant_type", "refresh_token"), ("refresh_token", refreshToken)])
            #expect(!fake.isLive(refreshToken: refreshToken))
            let newRefreshToken = try #require(try rotated.string("refresh_token"))
            #expect(fake.isLive(refreshToken: newRefreshToken))
            #expect(!fake.isLive(refreshToken: "fake-rt-unknown"))

            #expect(fake.revokeTokens(userID: "dora") == 4)
            #expect(!fake.isLive(refreshToken: newRefreshToken))
            #expect(fake.isLive(refreshToken: other.refreshToken))
            let user = try await http(fake, "GET", "/v2.0/user", headers: [("Authorization", "Bearer \(accessToken)")])
            #expect(user.status == 401)
            let refresh = try await tokenRequest(
                fake, [("grant_type", "refresh_token"), ("refresh_token", newRefreshToken)])
            #expect(try refresh.string("error") == "invalid_grant")
        }
    }
}
