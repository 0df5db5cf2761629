import AgentSupport
import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing
import WireFormats

@testable import AuthAgent
@testable import JSONRPC

/// Expects two token summaries to be the same but for `expiresIn`, which may differ by the seconds between them
/// (a minute is allowed: this machine can be very busy).
func expectSameSummary(_ a: JSONValue?, _ b: JSONValue?, sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .object(var first)? = a, case .object(var second)? = b else {
        Issue.record(
            "not two summaries: \(String(describing: a)) and \(String(describing: b))", sourceLocation: sourceLocation)
        return
    }
    let firstIn = first.removeValue(forKey: "expiresIn")?.intValue,
        secondIn = second.removeValue(forKey: "expiresIn")?.intValue
    #expect(first == second, sourceLocation: sourceLocation)
    #expect(
        firstIn != nil && secondIn != nil && abs(firstIn! - secondIn!) <= 60,
        "\(String(describing: firstIn)) vs \(String(describing: secondIn))",
        sourceLocation: sourceLocation)
}

/// `getToken` answered on the reading thread from the snapshot, and everything that must send it the slow way.
@Suite struct ImmediateTokenTests {
    @Test func aCachedTokenIsAnsweredAtOnceWithTheSameSummaryAsTheSlowPath() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try InProcessAgent(fake: fake)
        for (key, refreshExpiresAt) in [("car/7 x", "2031-01-01T00:00:00Z"), ("plain", nil)] {
            let stored = try await agent.store(key, accessToken: #"at "1" \ / é"#, refreshExpiresAt: refreshExpiresAt)
            let immediate = try agent.immediate("getToken", ["key": .string(key)])
            expectSameSummary(immediate, stored)
            expectSameSummary(immediate, try await agent.call("getToken", ["key": .string(key)]))
            #expect(immediate?["refreshExpiresAt"] == refreshExpiresAt.map { .string($0) })
            #expect(immediate?["expiresIn"]?.intValue.map { (7100...7200).contains($0) } == true)
            expectSameSummary(
                try agent.immediate("getToken", ["key": .string(key), "minValidity": 900, "forceRefresh": false]),
                stored)
        }
    }

    @Test func whatTheSnapshotCannotVouchForGoesTheSlowWay() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try InProcessAgent(fake: fake)
        _ = try await agent.store("car", expiresIn: 1000)
        _ = try await agent.store("véhicule")
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 900]) != nil)
        // Within minValidity plus the second the actor adds for rounding, the actor decides.
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 999]) == nil)
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 900, "forceRefresh": true]) == nil)
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 4000]) == nil)
        // Params read the same way on both paths: null is absent, and any valid key may be answered at once.
        expectSameSummary(
            try agent.immediate("getToken", ["key": "car", "minValidity": .null]),
            try await agent.call("getToken", ["key": "car"]))
        expectSameSummary(
            try agent.immediate("getToken", ["key": "véhicule"]), try await agent.call("getToken", ["key": "véhicule"]))
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 900, "extra": ["nested": true]]) == nil)
        #expect(try agent.immediate("getToken", ["key": "unknown"]) == nil)
        #expect(try agent.immediate("getToken", ["key": .string(String(repeating: "k", count: 513))]) == nil)
        #expect(try agent.immediate("getToken") == nil)
        #expect(try agent.immediate("status") == nil)
        #expect(try agent.immediate("ping") == [:])
        _ = try await agent.call("forgetToken", ["key": "car"])
        #expect(try agent.immediate("getToken", ["key": "car", "minValidity": 0]) == nil)
    }

    @Test func afterShutdownEveryRequestIsRefusedAtOnce() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try InProcessAgent(fake: fake)
        _ = try await agent.store("car")
        #expect(try agent.immediate("getToken", ["key": "car"]) != nil)
        #expect(try agent.immediate("shutdown") == .null)
        for method in ["getToken", "ping", "shutdown", "status"] {
            guard case .error(let error)? = agent.agent.immediateReply(to: try agent.message(method, ["key": "car"]))
            else {
                Issue.record("\(method) after shutdown was not refused at once")
                continue
            }
            #expect(error.code == -32600)
        }
    }

    @Test func aRunningRefreshTakesTheKeyOffTheFastPathUntilItsRowIsReadAgain() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let gate = GatedTransport()
        let agent = try InProcessAgent(fake: fake, transport: gate)
        let minted = fake.mintTokens(userID: "car")
        _ = try await agent.store("car", accessToken: minted.accessToken, refreshToken: minted.refreshToken)
        #expect(try agent.immediate("getToken", ["key": "car"])?["accessToken"] == .string(minted.accessToken))
        let refresh = Task { try await agent.call("getToken", ["key": "car", "forceRefresh": true]) }
        await gate.waitForArrivals(1)
        // Callers must join the refresh now, not be handed the token it replaces.
        #expect(try agent.immediate("getToken", ["key": "car"]) == nil)
        gate.open()
        let refreshed = try await refresh.value["accessToken"]
        #expect(refreshed != nil && refreshed != .string(minted.accessToken))
        #expect(try agent.immediate("getToken", ["key": "car"]) == nil)
        #expect(try await agent.call("getToken", ["key": "car"])["accessToken"] == refreshed)
        #expect(try agent.immediate("getToken", ["key": "car"])?["accessToken"] == refreshed)
        #expect(fake.count(.token) == 1)
    }

    @Test func aKeyWhoseRefreshWasRejectedIsNeverAnsweredAtOnce() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let agent = try InProcessAgent(fake: fake)
        let minted = fake.mintTokens(userID: "car")
        _ = try await agent.store("car", accessToken: minted.accessToken, refreshToken: minted.refreshToken)
        fake.revokeTokens(userID: "car")
        await #expect(throws: ResponseError.self) {
            try await agent.call("getToken", ["key": "car", "forceRefresh": true])
        }
        #expect(try agent.immediate("getToken", ["key": "car"]) == nil)
        do {
            _ = try await agent.call("getToken", ["key": "car"])
            Issue.record("a key needing a new Connect was served")
        } catch let error as ResponseError {
            #expect(error.data?["kind"] == "reauthRequired")
        }
        #expect(try agent.immediate("getToken", ["key": "car"]) == nil)
    }
}
