import AgentSupport
import AgentTestSupport
import FakeSmartcar
import Foundation
import SmartcarOAuth
import Testing

@testable import AuthAgent
@testable import TokenStore

/// Refresh-ahead (`RefreshAhead`, `TokenManager.refreshAhead`): callers inside a key's early window get the token
/// they have at once, and the key is refreshed once in the background; keys nobody asks for are left alone.
@Suite struct RefreshAheadTests {
    /// Seeded fleets of keys, some inside their early window for the caller's minValidity and some not, each asked
    /// a random number of times on the hot path: exactly the keys inside are asked for an early refresh, each by
    /// one caller only, and each is refreshed once, while its callers keep getting the token they had.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func onlyKeysAskedInsideTheirWindowAreRefreshedEarlyEachOnce(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let fixture = try ManagerFixture()
        let manager = try fixture.manager()
        let ahead = RefreshAhead(seconds: 900)
        var inside: [String: StoredToken] = [:]
        var asked: [String: Int] = [:]
        for index in 0..<24 {
            let key = "car-\(seed)-\(index)"
            let minValidity = Double(Int.random(in: 0...600, using: &random))
            let probe = StoredToken(key: key, accessToken: "a", refreshToken: "r", expiresAt: Date())
            let window = ahead.window(for: probe)
            // Well inside the window (minutes before minValidity is no longer met), or an hour outside it: a busy
            // machine may take long between the store and the ask.
            let isInside = Bool.random(using: &random)
            let expiresIn = minValidity + 1 + (isInside ? window / 2 : window + 3600)
            let stored = try await fixture.storeGrant(key, in: manager, expiresIn: expiresIn)
            if Int.random(in: 0..<4, using: &random) == 0 { continue }  // never asked
            var asks = 0
            for _ in 0..<Int.random(in: 1...20, using: &random) {
                let answer = try #require(manager.snapshot.summary(for: key, minValidity: minValidity, now: Date()))
                #expect(String(decoding: answer.json, as: UTF8.self).contains(stored.accessToken))
                if answer.refreshAhead { asks += 1 }
            }
            #expect(asks == (isInside ? 1 : 0), "\(key)")
            asked[key] = asks
            if isInside {
                inside[key] = stored
                await manager.refreshAhead(key, minValidity: minValidity)
                // Until Smartcar answers (the gate is shut), the hot path answers the token the key had.
                let during = try #require(manager.snapshot.summary(for: key, minValidity: minValidity, now: Date()))
                #expect(String(decoding: during.json, as: UTF8.self).contains(stored.accessToken))
                #expect(!during.refreshAhead)
            }
        }
        fixture.gate.open()
        for (key, stored) in inside {
            await fixture.waitForEvent { event in
                if case .changed(key, "refreshed", _, _) = event { true } else { false }
            }
            let now = try #require(manager.snapshot.summary(for: key, minValidity: 0, now: Date()))
            #expect(!String(decoding: now.json, as: UTF8.self).contains(stored.accessToken), "\(key)")
        }
        #expect(fixture.fake.count(.token) == inside.count)
        #expect(fixture.gate.arrived == inside.count)
    }

    /// While the early refresh waits on Smartcar, a caller the current token satisfies gets it without waiting
    /// (the gate stays shut while it is answered); one it does not satisfy waits for that same refresh.
    @Test func callersTheTokenSatisfiesDoNotWaitOthersJoinTheEarlyRefresh() async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager()
        let stored = try await fixture.storeGrant("car", in: manager, expiresIn: 900)
        #expect(manager.snapshot.summary(for: "car", minValidity: 300, now: Date())?.refreshAhead == true)
        await manager.refreshAhead("car", minValidity: 300)
        await fixture.gate.waitForArrivals(1)
        let satisfied = try await manager.token(for: "car", minValidity: 300, forceRefresh: false)
        #expect(satisfied.accessToken == stored.accessToken)
        let needy = Task { try await manager.token(for: "car", minValidity: 1000, forceRefresh: false) }
        fixture.gate.open()
        let refreshed = try await needy.value
        #expect(refreshed.accessToken != stored.accessToken && refreshed.generation == stored.generation + 1)
        #expect(fixture.fake.count(.token) == 1)
    }

    /// A failed early refresh loses nothing and changes nothing callers see: an upstream failure leaves the
    /// token on the hot path (not asked for again) and the row as it was; a rejected refresh token is heard by
    /// the next caller as `reauthRequired`, as without refresh-ahead.
    @Test func aFailedEarlyRefreshKeepsTheStateCallersSee() async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager()
        fixture.gate.open()
        _ = try await fixture.storeGrant("van", in: manager, expiresIn: 900)
        #expect(fixture.fake.revokeTokens(userID: "van") > 0)
        #expect(manager.snapshot.summary(for: "van", minValidity: 300, now: Date())?.refreshAhead == true)
        await manager.refreshAhead("van", minValidity: 300)
        await manager.refreshFinished("van")
        #expect(manager.snapshot.summary(for: "van", minValidity: 300, now: Date()) == nil)
        await #expect(throws: AgentError.self) {
            try await manager.token(for: "van", minValidity: 300, forceRefresh: false)
        }
        #expect(fixture.reauthEvents == 1)

        let stored = try await fixture.storeGrant("car", in: manager, expiresIn: 900)
        fixture.fake.inject(.htmlError(502), on: .token, times: 1000)
        #expect(manager.snapshot.summary(for: "car", minValidity: 300, now: Date())?.refreshAhead == true)
        await manager.refreshAhead("car", minValidity: 300)
        await manager.refreshFinished("car")
        #expect(fixture.fake.count(.token) > 1)
        let after = try #require(manager.snapshot.summary(for: "car", minValidity: 300, now: Date()))
        #expect(String(decoding: after.json, as: UTF8.self).contains(stored.accessToken) && !after.refreshAhead)
        #expect(fixture.fake.isLive(refreshToken: stored.refreshToken))
        #expect(fixture.reauthEvents == 1)
        // A caller the token no longer satisfies refreshes it, and hears the failure, as without refresh-ahead.
        await #expect(throws: SmartcarError.self) {
            try await manager.token(for: "car", minValidity: 1000, forceRefresh: false)
        }
    }

    /// An early refresh the store refuses (another process holds its write lock) leaves the token on the hot path
    /// and is not asked for again: no refresh, no retry, no log line per request.
    @Test func anEarlyRefreshTheStoreRefusesIsNotRetriedPerRequest() async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager(busyTimeout: .milliseconds(20))
        fixture.gate.open()
        let stored = try await fixture.storeGrant("car", in: manager, expiresIn: 900)
        let locker = try SQLiteConnection(path: fixture.storePath, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        defer { locker.close() }
        try locker.execute("BEGIN EXCLUSIVE")
        #expect(manager.snapshot.summary(for: "car", minValidity: 300, now: Date())?.refreshAhead == true)
        await manager.refreshAhead("car", minValidity: 300)
        await manager.refreshFinished("car")
        for _ in 0..<10 {
            let answer = try #require(manager.snapshot.summary(for: "car", minValidity: 300, now: Date()))
            #expect(String(decoding: answer.json, as: UTF8.self).contains(stored.accessToken) && !answer.refreshAhead)
        }
        #expect(fixture.fake.count(.token) == 0)
        try locker.execute("ROLLBACK")
        let refreshed = try await manager.token(for: "car", minValidity: 1000, forceRefresh: false)
        #expect(refreshed.accessToken != stored.accessToken && fixture.fake.count(.token) == 1)
    }

    /// The window's rules, over seeded lifetimes and keys: at most the setting, an eighth of the lifetime and
    /// lifetime² / 2 h, at least 2/3 of the smallest; the same for a key every time; 0 when off.
    @Test func theWindowIsCappedByTheLifetime() {
        var random = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let seconds = Double(Int.random(in: 0...3600, using: &random))
            let lifetime = Double(Int.random(in: 1...86_400, using: &random))
            let issued = Date(timeIntervalSince1970: 1_800_000_000)
            let token = StoredToken(
                key: "k\(UInt32.random(in: 0...UInt32.max, using: &random))", accessToken: "a", refreshToken: "r",
                expiresAt: issued.addingTimeInterval(lifetime), lastRefreshedAt: issued)
            let window = RefreshAhead(seconds: seconds).window(for: token)
            let cap = min(seconds, lifetime / 8, lifetime * lifetime / 7200)
            #expect(window <= cap + 1e-9 && window >= cap * 2 / 3 - 1e-9)
            #expect(window == RefreshAhead(seconds: seconds).window(for: token))
        }
        // A 60-second token: refreshed at most 1.5 s early (minValidity 0), about once per lifetime.
        let issued = Date()
        let short = StoredToken(
            key: "bench", accessToken: "a", refreshToken: "r", expiresAt: issued.addingTimeInterval(60),
            lastRefreshedAt: issued)
        #expect(60 / (60 - 1 - RefreshAhead(seconds: 900).window(for: short)) <= 1.03)
    }
}
