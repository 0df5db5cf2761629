import Foundation
import Testing
import TokenStore

@testable import AuthAgent

/// Issue 13: a row read before another agent's change was followed must not reach the hot path after it
/// (the change watch would never drop it again).
@Suite struct TokenSnapshotInvalidationTests {
    static func row(_ key: String, _ accessToken: String) -> StoredToken {
        StoredToken(
            key: key, accessToken: accessToken, refreshToken: "rt", expiresAt: Date().addingTimeInterval(3600),
            refreshExpiresAt: nil, scope: nil, lastRefreshedAt: nil)
    }

    @Test func aRowReadBeforeAChangeIsNotPublishedAfterIt() {
        let snapshot = TokenSnapshot(margin: 0)
        let readAt = snapshot.changesSeen
        snapshot.invalidate("other")
        snapshot.publish(Self.row("car", "old"), readAt: readAt)
        #expect(snapshot.summary(for: "car", minValidity: 0, now: Date()) == nil)
        snapshot.publish(Self.row("car", "new"), readAt: snapshot.changesSeen)
        #expect(snapshot.summary(for: "car", minValidity: 0, now: Date()) != nil)
    }

    @Test func aChangeDropsOnlyItsKeyAndEverythingDropsAll() {
        let snapshot = TokenSnapshot(margin: 0)
        for key in ["a", "b"] { snapshot.publish(Self.row(key, "at-\(key)"), readAt: snapshot.changesSeen) }
        snapshot.invalidate("a")
        #expect(snapshot.summary(for: "a", minValidity: 0, now: Date()) == nil)
        #expect(snapshot.summary(for: "b", minValidity: 0, now: Date()) != nil)
        snapshot.invalidateAll()
        #expect(snapshot.summary(for: "b", minValidity: 0, now: Date()) == nil)
    }
}
