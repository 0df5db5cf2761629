import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import TokenStore
import WireFormats

@testable import AuthAgent

/// Issue 13: an opted-in client of agent B hears of the changes agent A makes on their shared store, once
/// each, in order, naming A as their origin; A's own client hears of them once, with a null origin.
@Suite struct NotificationsAcrossAgentsTests {
    enum KeyState { case none, live, needsReauth }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func anotherAgentsClientHearsOfEveryChangeOnce(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let folder = try TemporaryFolder("notifications-across-agents")
        let location = StoreLocation.file(folder.file("tokens.sqlite3"))
        let changer = try InProcessAgent(fake: fake, store: location)
        let listener = try InProcessAgent(fake: fake, store: location)
        for agent in [changer, listener] { _ = try await agent.call("initialize", ["notifications": true]) }
        // A getToken returns once its agent follows the store's changes: the listener hears every later one.
        for agent in [changer, listener] { _ = try? await agent.call("getToken", ["key": "none yet"]) }
        let changerOrigin = JSONValue.string(changer.agent.setup.store.origin)
        var state = KeyState.none
        /// The Smartcar user of the key's grant.
        var user = ""
        var expected: [(method: String, params: JSONValue)] = []
        for round in 0..<20 {
            let key = "car"
            var params: [String: JSONValue] = ["key": .string(key)]
            var method = MethodTable.Outgoing.tokenChanged.rawValue
            switch (Int.random(in: 0..<5, using: &random), state) {
            case (0, _), (_, .none):
                user = "user-\(round)"
                let minted = fake.mintTokens(userID: user)
                let result = try await changer.store(
                    key, accessToken: minted.accessToken, refreshToken: minted.refreshToken)
                (params["reason"], params["expiresAt"], state) = ("stored", result["expiresAt"], .live)
            case (1, _):
                user = "user-\(round)"
                let code = fake.issueCode(userID: user)
                let result = try await changer.call("exchangeCode", ["code": .string(code), "key": .string(key)])
                (params["reason"], params["expiresAt"], state) = ("exchanged", result["expiresAt"], .live)
            case (2, .live):
                let result = try await changer.call("getToken", ["key": .string(key), "forceRefresh": true])
                (params["reason"], params["expiresAt"]) = ("refreshed", result["expiresAt"])
            case (3, .live):
                fake.revokeTokens(userID: user)
                await #expect(throws: ResponseError.self) {
                    _ = try await changer.call("getToken", ["key": .string(key), "forceRefresh": true])
                }
                method = MethodTable.Outgoing.reauthRequired.rawValue
                (params["reason"], state) = ("refresh token rejected", .needsReauth)
            default:
                _ = try await changer.call("forgetToken", ["key": .string(key)])
                (params["reason"], params["expiresAt"], state) = ("forgotten", .null, .none)
            }
            expected.append((method, .object(params)))
            // The listener reads the row once it hears of the change: wait for each, so it reads this one.
            try await Self.waitUntil(listener, hears: expected.count)
        }
        // A change by the listener, heard by the changer after every change of its own (the store's order):
        // by then a second notification of any of them would have arrived too.
        let minted = fake.mintTokens(userID: "marker")
        let marker = try await listener.store(
            "marker", accessToken: minted.accessToken, refreshToken: minted.refreshToken)
        try await Self.waitUntil(changer, hears: expected.count + 1)
        let listenerOrigin = JSONValue.string(listener.agent.setup.store.origin)
        let markerParams: JSONValue = [
            "key": "marker", "reason": "stored", "expiresAt": marker["expiresAt"] ?? .null,
        ]
        Self.expect(
            changer.sentNotifications,
            expected.map { ($0.method, Self.with($0.params, origin: .null)) }
                + [("tokenChanged", Self.with(markerParams, origin: listenerOrigin))])
        Self.expect(
            listener.sentNotifications,
            expected.map { ($0.method, Self.with($0.params, origin: changerOrigin)) }
                + [("tokenChanged", Self.with(markerParams, origin: .null))])
    }

    static func with(_ params: JSONValue, origin: JSONValue) -> JSONValue {
        guard case .object(var fields) = params else { return params }
        fields["origin"] = origin
        return .object(fields)
    }

    static func expect(_ sent: [(method: String, params: JSONValue)], _ expected: [(String, JSONValue)]) {
        #expect(sent.count == expected.count, "\(sent)")
        for (got, want) in zip(sent, expected) {
            #expect(got.method == want.0)
            #expect(got.params == want.1)
        }
    }

    /// Waits (at most 30 s) until `agent` sent at least `count` notifications.
    static func waitUntil(_ agent: InProcessAgent, hears count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while agent.sentNotifications.count < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        try #require(agent.sentNotifications.count >= count, "\(agent.sentNotifications)")
    }
}
