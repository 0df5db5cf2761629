import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing
import TokenStore
import WireFormats

@testable import AuthAgent
@testable import JSONRPC

/// Issue 12, class 2: a row already on disk with an expiry no clamped grant could have (written before
/// lifetimes were clamped: year 506713, or worse) loads and is answered, by every path, without trapping.
@Suite struct HostileRowTests {
    /// Expiries as seconds from now, as `now + expires_in` made them from hostile answers, and some no
    /// answer could make (a row edited by hand).
    static let offsets: [TimeInterval] = [
        1e20, 1e19, 0x1p63, 9_223_372_036_854_775_807.0, 1e300, -1e20, -1e300, .greatestFiniteMagnitude,
        .infinity, -.infinity, 1e15, 7200,
    ]

    @Test func everyPathAnswersAPoisonRowWithoutTrapping() async throws {
        let folder = try TemporaryFolder("hostile-row")
        let location = StoreLocation.file(folder.file("tokens.sqlite"))
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let store = try SQLiteTokenStore.open(location, application: FakeSmartcar.Options().clientID)
        let now = Date()
        for (index, offset) in Self.offsets.enumerated() {
            let minted = fake.mintTokens(userID: "user-\(index)")
            _ = try await store.save(
                StoredToken(
                    key: "key-\(index)", accessToken: minted.accessToken, refreshToken: minted.refreshToken,
                    expiresAt: now + offset, refreshExpiresAt: now + offset))
        }
        await store.close()

        let agent = try InProcessAgent(fake: fake, store: location)
        for (index, offset) in Self.offsets.enumerated() {
            let params: JSONValue = ["key": .string("key-\(index)"), "minValidity": 0]
            for answer in [try agent.immediate("getToken", params), try? await agent.call("getToken", params)] {
                guard let answer else { continue }
                let expiresIn = try #require(answer["expiresIn"]?.intValue, "\(offset): \(answer)")
                #expect(expiresIn >= 0, "\(offset)")
                let expiresAt = try #require(answer["expiresAt"]?.stringValue)
                #expect(RFC3339.date(expiresAt) != nil, "\(offset): \(expiresAt) is RFC 3339")
            }
        }
        let listed = try await agent.call("listTokens")
        #expect(listed.compactText.contains("key-\(Self.offsets.count - 1)"))
    }

    @Test func expiresInClampsEveryInterval() {
        let now = Date()
        #expect(ExpiresIn.seconds(until: now + 1e20, now: now) == .max)
        #expect(ExpiresIn.seconds(until: now + 0x1p63, now: now) > .max / 2)
        #expect(ExpiresIn.seconds(until: now - 1e20, now: now) == 0)
        #expect(ExpiresIn.seconds(until: Date(timeIntervalSinceReferenceDate: .nan), now: now) == 0)
        #expect(ExpiresIn.seconds(until: now + 90.9, now: now) == 90)
        #expect(RFC3339.string(now + 1e20) == "9999-12-31T23:59:59Z")
        #expect(RFC3339.string(Date(timeIntervalSinceReferenceDate: .nan)).hasPrefix("0001-"))
    }
}
