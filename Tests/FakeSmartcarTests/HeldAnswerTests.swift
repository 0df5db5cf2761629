import AgentTestSupport
import Foundation
import Synchronization
import Testing
import WireFormats

@testable import FakeSmartcar

/// `Fault.hold` and `releaseHeld`: answers kept back and sent in a random order (reordering), and the record of
/// refused refreshes a strict test reads.
@Suite struct HeldAnswerTests {
    /// How many answers the client has received.
    final class Answered: Sendable {
        let count = Mutex(0)
    }

    /// A refresh on a connection that waits up to 10 minutes for its answer: a held answer comes only once
    /// the test releases it, which on a loaded machine running every suite at once may take a while.
    private func patientRefresh(_ fake: FakeSmartcar, _ token: String) async throws -> RawResponse {
        let port = fake.port
        let text = requestText(
            "POST", "/oauth/token", headers: [basic(fake.options.clientID, fake.options.clientSecret), formType],
            body: FormCoding.encode([("grant_type", "refresh_token"), ("refresh_token", token)]))
        return try await blocking {
            let connection = try RawConnection(port: port, timeoutSeconds: 600)
            try connection.send(text)
            guard let response = try connection.readResponse() else { throw TestFailure("closed without an answer") }
            return response
        }
    }

    /// Refreshes of `count` fresh tokens, sent at once; answers the responses.
    private func refreshConcurrently(
        _ fake: FakeSmartcar, count: Int, answered: Answered = Answered()
    ) -> Task<[RawResponse], any Error> {
        let tokens = (0..<count).map { fake.mintTokens(userID: "user-\($0)").refreshToken }
        return Task {
            try await withThrowingTaskGroup(of: RawResponse.self) { group in
                for token in tokens {
                    group.addTask {
                        let response = try await patientRefresh(fake, token)
                        answered.count.withLock { $0 += 1 }
                        return response
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
    }

    @Test(arguments: [1, 7, 2026] as [UInt64])
    func heldAnswersGoOutOnlyWhenReleasedInTheSeededOrder(seed: UInt64) async throws {
        try await withFake { fake in
            fake.inject(.hold, on: .token, times: 3)
            let answered = Answered()
            let requests = refreshConcurrently(fake, count: 3, answered: answered)
            #expect(try await blocking { fake.waitForHeldAnswers(3, timeout: .seconds(60)) })
            #expect(answered.count.withLock { $0 } == 0)

            let heldOrder = fake.heldAnswers
            let released = try await blocking {
                var generator = SeededGenerator(seed: seed)
                return fake.releaseHeld(using: &generator)
            }
            var replay = SeededGenerator(seed: seed)
            #expect(released == heldOrder.shuffled(using: &replay))
            #expect(fake.heldAnswers.isEmpty)

            let responses = try await requests.value
            #expect(responses.map(\.status) == [200, 200, 200])
            #expect(Set(responses.compactMap { $0.headers["sc-request-id"] }) == Set(released))
        }
    }

    @Test func stopEndsHeldAnswersUnanswered() async throws {
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        fake.inject(.hold, on: .token)
        let requests = refreshConcurrently(fake, count: 1)
        #expect(try await blocking { fake.waitForHeldAnswers(1, timeout: .seconds(60)) })
        fake.stop()
        let outcome = await requests.result
        #expect(throws: (any Error).self) { try outcome.get() }
    }

    @Test func theControlAPIHoldsAndReleases() async throws {
        try await withFake { fake in
            let injected = try await http(
                fake, "POST", "/_fake/fault", headers: [("Content-Type", "application/json")],
                body: #"{"fault":{"kind":"hold"},"endpoint":"token"}"#)
            #expect(injected.status == 200)
            let requests = refreshConcurrently(fake, count: 1)
            #expect(try await blocking { fake.waitForHeldAnswers(1, timeout: .seconds(60)) })
            let held = fake.heldAnswers
            let release = try await http(fake, "POST", "/_fake/release")
            #expect(try release.object()["released"] as? [String] == held)
            #expect(try await requests.value.map(\.status) == [200])
        }
    }

    @Test func holdRoundTripsThroughJSON() throws {
        let data = try JSONEncoder().encode(Fault.hold)
        #expect(String(decoding: data, as: UTF8.self) == #"{"kind":"hold"}"#)
        #expect(try JSONDecoder().decode(Fault.self, from: data) == .hold)
    }

    @Test func recordsEveryRefusedRefreshWithItsOwnerAndCountsGraceReuses() async throws {
        let clock = TestClock()
        var options = FakeSmartcar.Options()
        options.refreshReuse = .grace(60)
        options.now = { clock.now() }
        try await withFake(options) { fake in
            let (_, refreshToken) = fake.mintTokens(userID: "alice")
            let form = [("grant_type", "refresh_token"), ("refresh_token", refreshToken)]
            #expect(!fake.isSpent(refreshToken: refreshToken))
            let first = try await tokenRequest(fake, form)
            #expect(fake.isSpent(refreshToken: refreshToken))
            let accessToken = try #require(try first.string("access_token"))
            #expect(fake.owner(ofAccessToken: accessToken) == "alice")
            #expect(fake.owner(ofRefreshToken: try #require(try first.string("refresh_token"))) == "alice")
            #expect(fake.owner(ofAccessToken: "fake-at-unknown") == nil)

            clock.advance(59)
            #expect(try await tokenRequest(fake, form).status == 200)
            #expect(fake.graceReuses == 1)
            #expect(fake.refusedRefreshes.isEmpty)

            clock.advance(2)
            #expect(try await tokenRequest(fake, form).status == 400)
            let unknown = [("grant_type", "refresh_token"), ("refresh_token", "fake-rt-never-issued")]
            #expect(try await tokenRequest(fake, unknown).status == 400)
            #expect(
                fake.refusedRefreshes == [
                    .init(userID: "alice", at: clock.now()), .init(userID: nil, at: clock.now()),
                ])
            #expect(fake.graceReuses == 1)
        }
    }
}
