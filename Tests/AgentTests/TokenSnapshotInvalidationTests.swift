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

    /// A snapshot whose watch has just caught up with the store.
    static func followedSnapshot() -> TokenSnapshot {
        let snapshot = TokenSnapshot(jitter: 0)
        snapshot.followed(until: .now)
        return snapshot
    }

    @Test func aRowReadBeforeAChangeIsNotPublishedAfterIt() {
        let snapshot = Self.followedSnapshot()
        let readAt = snapshot.changesSeen
        snapshot.invalidate("other")
        snapshot.publish(Self.row("car", "old"), readAt: readAt)
        #expect(snapshot.summary(for: "car", minValidity: 0, now: Date()) == nil)
        snapshot.publish(Self.row("car", "new"), readAt: snapshot.changesSeen)
        #expect(snapshot.summary(for: "car", minValidity: 0, now: Date()) != nil)
    }

    @Test func aChangeDropsOnlyItsKeyAndEverythingDropsAll() {
        let snapshot = Self.followedSnapshot()
        for key in ["a", "b"] { snapshot.publish(Self.row(key, "at-\(key)"), readAt: snapshot.changesSeen) }
        snapshot.invalidate("a")
        #expect(snapshot.summary(for: "a", minValidity: 0, now: Date()) == nil)
        #expect(snapshot.summary(for: "b", minValidity: 0, now: Date()) != nil)
        snapshot.invalidateAll()
        #expect(snapshot.summary(for: "b", minValidity: 0, now: Date()) == nil)
    }

    /// A paused process resumes with requests waiting before its watch has run: nothing is answered from memory
    /// until the watch has followed the store within `followLagLimit`.
    @Test func nothingIsAnsweredWhileTheWatchLags() {
        let snapshot = TokenSnapshot(jitter: 0)
        snapshot.publish(Self.row("car", "at"), readAt: nil)
        #expect(snapshot.summary(for: "car", minValidity: 0, now: Date()) == nil, "never followed yet")
        snapshot.followed(until: .now - TokenSnapshot.followLagLimit - .milliseconds(1))
        #expect(snapshot.summary(for: "car", minValidity: 0, now: Date()) == nil, "followed too long ago")
        snapshot.followed(until: .now)
        #expect(snapshot.summary(for: "car", minValidity: 0, now: Date()) != nil)
    }
}
