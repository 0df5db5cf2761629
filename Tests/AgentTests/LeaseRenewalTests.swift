import AgentSupport
import AgentTestSupport
import FakeSmartcar
import Foundation
import SmartcarOAuth
import Synchronization
import Testing

@testable import AuthAgent
@testable import TokenStore

/// Time shared by the managers of a test (as processes on one machine share it), moved by the test.
final class SharedTime: Sendable {
    private let offset = Mutex<TimeInterval>(0)
    func now() -> Date { Date().addingTimeInterval(offset.withLock { $0 }) }
    func advance(by seconds: TimeInterval) { offset.withLock { $0 += seconds } }
}

/// One manager's view of `SharedTime` that counts the manager's looks at the clock, so a test can await what
/// the manager does in the background (a lease renewal, a look at another's lease) instead of sleeping.
final class CountingClock: WallClock {
    private struct Looks {
        var count = 0
        var waiters: [(count: Int, continuation: CheckedContinuation<Bool, Never>)] = []
    }
    private let time: SharedTime
    private let looks = Mutex(Looks())

    init(_ time: SharedTime) { self.time = time }

    var count: Int { looks.withLock { $0.count } }

    func now() -> Date {
        let ready = looks.withLock { looks in
            looks.count += 1
            let ready = looks.waiters.filter { $0.count <= looks.count }.map(\.continuation)
            looks.waiters.removeAll { $0.count <= looks.count }
            return ready
        }
        for waiter in ready { waiter.resume(returning: true) }
        return time.now()
    }

    /// True once the clock was looked at `count` times in all; false if that did not happen within `deadline`
    /// (a generous bound for a failing test, never a synchronisation).
    func waitForLooks(_ count: Int, deadline: Duration = .seconds(60)) async -> Bool {
        let timeout = Task { [self] in
            try? await Task.sleep(for: deadline)
            let late = self.looks.withLock { looks in
                defer { looks.waiters.removeAll { $0.count == count } }
                return looks.waiters.filter { $0.count == count }.map(\.continuation)
            }
            for waiter in late { waiter.resume(returning: false) }
        }
        defer { timeout.cancel() }
        return await withCheckedContinuation { continuation in
            let reached = looks.withLock { looks in
                if looks.count >= count { return true }
                looks.waiters.append((count, continuation))
                return false
            }
            if reached { continuation.resume(returning: true) }
        }
    }
}

/// While a key's rotated tokens are unsaved (their commit failed), the manager holding them keeps renewing
/// the key's lease, so another process sharing the store does not re-send the refresh token they replaced
/// (issue 12, class 4: "the key's lease is kept (renewed) while they are unsaved").
@Suite struct LeaseRenewalTests {
    /// A trigger another connection installs: every write of a new refresh token fails (as on a full disk),
    /// while lease writes, which change no token, go through.
    static let failTokenWrites = """
        CREATE TRIGGER refuse_new_tokens BEFORE UPDATE ON tokens
        WHEN NEW.refresh_token IS NOT OLD.refresh_token
        BEGIN SELECT RAISE(ABORT, 'the test refuses token writes'); END
        """

    func manager(_ fixture: ManagerFixture, owner: String, clock: CountingClock) throws -> TokenManager {
        let configuration = try SmartcarConfiguration.fromEnvironment(fixture.fake.agentEnvironment)
        return TokenManager(
            store: try SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets),
            smartcar: SmartcarClient(
                configuration: configuration, transport: fixture.gate, clock: clock, logger: .silent),
            upstream: UpstreamLimiter(limit: 4), clock: clock, logger: .silent,
            settings: .init(leaseOwner: owner), onEvent: { _ in })
    }

    @Test(.timeLimit(.minutes(5))) func anotherManagerWaitsWhileTheRotatedTokenIsUnsavedThenServesIt() async throws {
        let fixture = try ManagerFixture()  // the fake rejects any reuse of a refresh token
        fixture.gate.open()
        let time = SharedTime()
        let (clockA, clockB) = (CountingClock(time), CountingClock(time))
        let first = try manager(fixture, owner: "manager-A", clock: clockA)
        let second = try manager(fixture, owner: "manager-B", clock: clockB)
        let stored = try await fixture.storeGrant("car", in: first, expiresIn: 7200)
        let saboteur = try SQLiteConnection(path: fixture.storePath, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        defer { saboteur.close() }
        // The manager writes leases meanwhile: the trigger's statements wait for its lock, as another program would.
        saboteur.setBusyTimeout(milliseconds: 30_000)
        try saboteur.execute(Self.failTokenWrites)

        // The first manager spends the refresh token at Smartcar, and cannot store the rotated one.
        await #expect(throws: AgentError.self) {
            try await first.token(for: "car", minValidity: 0, forceRefresh: true)
        }
        #expect(fixture.fake.count(.token) == 1 && !fixture.fake.isLive(refreshToken: stored.refreshToken))
        #expect(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car")?.refreshToken == stored.refreshToken)

        // Three lease periods pass, 15 s at a time; after each step the first manager's background writer
        // looks at the clock twice, so one renewal (a look, then the lease write) ran at the new time.
        for _ in 0..<4 {
            time.advance(by: 15)
            let renewed = await clockA.waitForLooks(clockA.count + 2)
            #expect(renewed, "the manager holding unsaved tokens did not renew the key's lease")
            if !renewed { break }
        }

        // The second manager asks for a refresh: it finds the lease held and waits (it looked three times),
        // without sending the old refresh token.
        let waiting = Task { try await second.token(for: "car", minValidity: 0, forceRefresh: true) }
        _ = await clockB.waitForLooks(clockB.count + 3)
        #expect(fixture.fake.count(.token) == 1, "the second manager re-sent the spent refresh token")
        #expect(fixture.fake.requests.filter { $0.form["refresh_token"] == stored.refreshToken }.count == 1)

        // The store recovers: the first manager writes the rotated tokens, and the second serves them.
        try saboteur.execute("DROP TRIGGER refuse_new_tokens")
        let served = try await waiting.value
        let row = try #require(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car"))
        #expect(served.refreshToken == row.refreshToken && served.accessToken == row.accessToken)
        #expect(row.refreshToken != stored.refreshToken && fixture.fake.isLive(refreshToken: row.refreshToken))
        #expect(!row.needsReauth && fixture.fake.count(.token) == 1)
        #expect(await first.drainUnsaved(within: 0) == [])
    }
}
