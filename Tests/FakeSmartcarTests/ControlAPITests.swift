import Foundation
import Testing

@testable import FakeSmartcar

@Suite struct ControlAPITests {
    private func post(_ fake: FakeSmartcar, _ path: String, _ json: String) async throws -> RawResponse {
        try await http(fake, "POST", path, headers: [("Content-Type", "application/json")], body: json)
    }

    @Test func mintsTokensAndIssuesCodes() async throws {
        try await withFake { fake in
            let minted = try await post(fake, "/_fake/mint", #"{"userID":"u-7"}"#)
            #expect(minted.status == 200)
            #expect(try minted.string("userID") == "u-7")
            let accessToken = try #require(try minted.string("accessToken"))
            let user = try await http(fake, "GET", "/v2.0/user", headers: [("Authorization", "Bearer \(accessToken)")])
            #expect(try user.string("id") == "u-7")
            let refreshToken = try #require(try minted.string("refreshToken"))
            #expect(
                try await tokenRequest(fake, [("grant_type", "refresh_token"), ("refresh_token", refreshToken)]).status
                    == 200)

            let issued = try await post(
                fake, "/_fake/code", #"{"redirectURI":"https://example.com/cb","userID":"u-8"}"#)
            let code = try #require(try issued.string("code"))
            let exchange = try await tokenRequest(
                fake,
                [
                    ("grant_type", "authorization_code"), ("code", code),
                    ("redirect_uri", "https://example.com/cb"),
                ])
            #expect(exchange.status == 200)
            let defaults = try await http(fake, "POST", "/_fake/mint")
            #expect(try defaults.string("userID") == "user-1")

            let revoked = try await post(fake, "/_fake/revoke", #"{"userID":"u-7"}"#)
            #expect(try revoked.object()["revoked"] as? Int == 4)  // two pairs: minted, then refreshed
            #expect(!fake.isLive(refreshToken: refreshToken))
        }
    }

    @Test func injectsFaultsAndReportsRequestsAndCounts() async throws {
        try await withFake { fake in
            let injected = try await post(
                fake, "/_fake/fault",
                #"{"fault":{"kind":"rateLimited","retryAfter":"7"},"endpoint":"token","times":2}"#)
            #expect(injected.status == 200)
            for _ in 0..<2 {
                let limited = try await tokenRequest(fake, [("grant_type", "refresh_token"), ("refresh_token", "x")])
                #expect(limited.status == 429)
                #expect(limited.headers["retry-after"] == "7")
            }
            #expect(
                try await tokenRequest(fake, [("grant_type", "refresh_token"), ("refresh_token", "x")]).status == 400)

            let counts = try await http(fake, "GET", "/_fake/counts")
            let object = try counts.object()
            #expect(object["token"] as? Int == 3)
            #expect(object["authorize"] as? Int == 0)
            #expect(object["appToken"] as? Int == 0)
            #expect(object["user"] as? Int == 0)

            let requests = try await http(fake, "GET", "/_fake/requests")
            let decoded = try JSONDecoder().decode([RecordedRequest].self, from: Data(requests.body))
            #expect(decoded == fake.requests)
            #expect(decoded.count == 3)
            #expect(decoded.allSatisfy { $0.endpoint == .token && $0.form["grant_type"] == "refresh_token" })

            #expect(try await post(fake, "/_fake/reset", "").status == 200)
            #expect(fake.requests.isEmpty)
            #expect(fake.count(.token) == 0)
        }
    }

    @Test func rejectsBadControlRequests() async throws {
        try await withFake { fake in
            let badKind = try await post(fake, "/_fake/fault", #"{"fault":{"kind":"explode"}}"#)
            #expect(badKind.status == 400)
            #expect(try badKind.string("error")?.contains("fault") == true)
            #expect(try await post(fake, "/_fake/fault", #"{"fault":{"kind":"drop"},"times":0}"#).status == 400)
            #expect(
                try await post(fake, "/_fake/fault", #"{"fault":{"kind":"drop"},"endpoint":"vehicles"}"#).status == 400)
            #expect(try await post(fake, "/_fake/mint", "not json").status == 400)
            #expect(try await http(fake, "GET", "/_fake/mint").status == 405)
            #expect(try await http(fake, "GET", "/_fake/nothing").status == 404)
            #expect(fake.requests.isEmpty)
            // None of those queued a fault.
            #expect(try await http(fake, "GET", "/v2.0/user").status == 401)
        }
    }
}
