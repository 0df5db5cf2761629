import AgentTestSupport
import Foundation
import Testing
import WireFormats

@testable import FakeSmartcar

/// Several applications on one fake: every code and refresh token works only for the client it was issued to,
/// as on Smartcar; another client's attempt is refused `invalid_grant`, recorded, and leaves the grant unspent.
@Suite struct ClientBindingTests {
    static let clients = ["sandbox-client-id": "sandbox-client-secret", "app-b": "secret-b", "app-c": "secret-c"]

    static func options() -> FakeSmartcar.Options {
        var options = FakeSmartcar.Options()
        options.extraClients = ["app-b": "secret-b", "app-c": "secret-c"]
        return options
    }

    /// Random grants issued to random clients, used by random clients, against a model: a use succeeds only by
    /// the grant's own client while it is unspent, and every use by another client is recorded.
    @Test(arguments: [1, 2, 3] as [UInt64]) func grantsWorkOnlyForTheirOwnClient(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        try await withFake(Self.options()) { fake in
            let ids = Self.clients.keys.sorted()
            // Each grant: its kind, its owner, whether it was spent.
            var grants: [(value: String, kind: FakeSmartcar.CrossClientGrant.Kind, owner: String, spent: Bool)] = []
            var expectedCrossUses: [FakeSmartcar.CrossClientGrant] = []
            for _ in 0..<60 {
                let owner = ids.randomElement(using: &random)!
                switch Int.random(in: 0..<4, using: &random) {
                case 0:
                    grants.append((fake.issueCode(clientID: owner), .code, owner, false))
                case 1:
                    grants.append((fake.mintTokens(clientID: owner).refreshToken, .refreshToken, owner, false))
                default:
                    guard let index = grants.indices.randomElement(using: &random) else { continue }
                    let grant = grants[index]
                    let sender = Bool.random(using: &random) ? grant.owner : owner
                    let form =
                        grant.kind == .code
                        ? [("grant_type", "authorization_code"), ("code", grant.value)]
                        : [("grant_type", "refresh_token"), ("refresh_token", grant.value)]
                    let response = try await tokenRequest(fake, form, auth: basic(sender, Self.clients[sender]!))
                    let succeeds = sender == grant.owner && !grant.spent
                    #expect(response.status == (succeeds ? 200 : 400), "\(grant.kind) of \(grant.owner) by \(sender)")
                    if sender != grant.owner {
                        expectedCrossUses.append(.init(kind: grant.kind, issuedTo: grant.owner, sentBy: sender))
                    }
                    if succeeds {
                        grants[index].spent = true
                        let rotated = try #require(try response.string("refresh_token"))
                        grants.append((rotated, .refreshToken, grant.owner, false))
                    } else {
                        #expect(try response.string("error") == "invalid_grant")
                    }
                }
            }
            #expect(fake.crossClientGrants == expectedCrossUses)
            #expect(expectedCrossUses.count > 5, "the search should try other clients' grants")
        }
    }

    @Test func authorizeAndAppTokensAcceptEveryConfiguredClientWithItsOwnSecret() async throws {
        try await withFake(Self.options()) { fake in
            let redirect = try await http(fake, "GET", "/oauth/authorize?response_type=code&client_id=app-b")
            #expect(redirect.status == 302)
            let location = try #require(redirect.headers["location"])
            let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value)
            let form = [("grant_type", "authorization_code"), ("code", code)]
            let byMain = try await tokenRequest(fake, form)
            #expect(byMain.status == 400)
            #expect(fake.crossClientGrants == [.init(kind: .code, issuedTo: "app-b", sentBy: "sandbox-client-id")])
            #expect(try await tokenRequest(fake, form, auth: basic("app-b", "secret-b")).status == 200)

            let wrongSecret = try await tokenRequest(fake, form, auth: basic("app-b", "secret-c"))
            #expect(wrongSecret.status == 401)
            let appToken = try await http(
                fake, "POST", "/oauth2/token", headers: [formType],
                body: FormCoding.encode([
                    ("grant_type", "client_credentials"), ("client_id", "app-c"), ("client_secret", "secret-c"),
                ]))
            #expect(appToken.status == 200)
            let unknown = try await http(fake, "GET", "/oauth/authorize?response_type=code&client_id=app-d")
            #expect(unknown.status == 400)
        }
    }
}
