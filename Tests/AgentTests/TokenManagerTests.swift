import AgentSupport
import AgentTestSupport
import FakeSmartcar
import Foundation
import SmartcarOAuth
import Synchronization
import Testing

@testable import AuthAgent
@testable import TokenStore

/// What an agent given the fake's credentials seals its store with: a test opening that store uses the same.
let agentSecrets = FakeSmartcar.Options().storeSecrets

/// `TokenManager` in this process: a real SQLite store in a private folder, the fake Smartcar behind a gate.
final class ManagerFixture: Sendable {
    let fake: FakeSmartcar
    let folder: TemporaryFolder
    let gate = GatedTransport()
    private struct EventLog {
        var events: [TokenManager.Event] = []
        var waiters:
            [(id: Int, matches: @Sendable (TokenManager.Event) -> Bool, continuation: CheckedContinuation<Void, Never>)] =
                []
        var nextID = 0
    }
    private let log = Mutex(EventLog())

    init(fakeOptions: FakeSmartcar.Options = .init()) throws {
        fake = try FakeSmartcar(options: fakeOptions)
        folder = try TemporaryFolder("token-manager")
    }

    deinit { fake.stop() }

    var storePath: String { folder.file("tokens.sqlite3") }

    /// A manager on the fixture's store; `owner` names it as a lease holder, as another process would be.
    /// `adjust` changes the manager's settings; `wrap` may put the store behind another (a `SteeredStore`).
    func manager(
        owner: String = "manager-A", busyTimeout: Duration = .seconds(5), sealing: StoreSecrets? = agentSecrets,
        adjust: (inout TokenManager.Settings) -> Void = { _ in },
        wrap: (any TokenStore) -> any TokenStore = { $0 }
    ) throws -> TokenManager {
        let store = wrap(
            try SQLiteTokenStore.open(
                .file(storePath), application: FakeSmartcar.Options().clientID, sealing: sealing,
                busyTimeout: busyTimeout))
        var settings = TokenManager.Settings(leaseOwner: owner)
        adjust(&settings)
        let configuration = try SmartcarConfiguration.fromEnvironment(fake.agentEnvironment)
        let smartcar = SmartcarClient(
            configuration: configuration, transport: gate, clock: SystemClock(), logger: .silent)
        return TokenManager(
            store: store, smartcar: smartcar, upstream: UpstreamLimiter(limit: 32), clock: SystemClock(),
            logger: .silent,
            settings: settings, onEvent: { [self] event in record(event) })
    }

    /// Stores a grant the fake knows, whose access token expires in `expiresIn` seconds.
    func storeGrant(_ key: String, in manager: TokenManager, expiresIn: TimeInterval = 10) async throws -> StoredToken {
        let minted = fake.mintTokens(userID: key)
        let token = StoredToken(
            key: key, accessToken: minted.accessToken, refreshToken: minted.refreshToken,
            expiresAt: Date().addingTimeInterval(expiresIn), refreshExpiresAt: nil, scope: nil, lastRefreshedAt: nil)
        return try await manager.save(token, kind: .stored)
    }

    /// Forces a refresh of `key` whose commit fails: while Smartcar rotates the token, another process locks
    /// the store. `whileLocked` runs once the refresh has failed, before the lock is released.
    func forceRefreshWhileStoreIsLocked(
        _ key: String, in manager: TokenManager, whileLocked: () async throws -> Void
    ) async throws {
        let refresh = Task { try await manager.token(for: key, minValidity: 0, forceRefresh: true) }
        await gate.waitForArrivals(1)
        let locker = try SQLiteConnection(path: storePath, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        defer { locker.close() }
        try locker.execute("BEGIN EXCLUSIVE")
        gate.open()
        await #expect(throws: AgentError.self) { try await refresh.value }
        try await whileLocked()
        try locker.execute("ROLLBACK")
    }

    private func record(_ event: TokenManager.Event) {
        let ready = log.withLock { log in
            log.events.append(event)
            let ready = log.waiters.filter { $0.matches(event) }.map(\.continuation)
            log.waiters.removeAll { $0.matches(event) }
            return ready
        }
        for waiter in ready { waiter.resume() }
    }

    /// Returns once an event matching `matches` was sent (before or after the call), or the test is cancelled
    /// (its time limit): the test awaits what the manager does in the background instead of sleeping.
    func waitForEvent(_ matches: @escaping @Sendable (TokenManager.Event) -> Bool) async {
        let id = log.withLock { log in
            defer { log.nextID += 1 }
            return log.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let seen = log.withLock { log in
                    if log.events.contains(where: matches) || Task.isCancelled { return true }
                    log.waiters.append((id, matches, continuation))
                    return false
                }
                if seen { continuation.resume() }
            }
        } onCancel: {
            let waiter = log.withLock { log in
                defer { log.waiters.removeAll { $0.id == id } }
                return log.waiters.first { $0.id == id }?.continuation
            }
            waiter?.resume()
        }
    }

    var reauthEvents: Int {
        log.withLock { $0.events.filter { if case .reauthRequired = $0 { true } else { false } }.count }
    }
}

/// The rules of `TokenManager`, directly: no agent process, no pipe.
@Suite struct TokenManagerTests {
    @Test func concurrentCallersOfOneKeyShareOneRefresh() async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager()
        let stored = try await fixture.storeGrant("car", in: manager)
        let callers = (0..<50).map { _ in
            Task { try await manager.token(for: "car", minValidity: 300, forceRefresh: false) }
        }
        await fixture.gate.waitForArrivals(1)
        fixture.gate.open()
        var accessTokens = Set<String>()
        for caller in callers { accessTokens.insert(try await caller.value.accessToken) }
        #expect(accessTokens.count == 1 && !accessTokens.contains(stored.accessToken))
        #expect(fixture.fake.count(.token) == 1)
        #expect(fixture.gate.arrived == 1)
    }

    @Test func twoManagersOnOneStoreRefreshOnceBetweenThem() async throws {
        let fixture = try ManagerFixture()
        let first = try fixture.manager(owner: "manager-A")
        let second = try fixture.manager(owner: "manager-B")
        _ = try await fixture.storeGrant("car", in: first)
        let a = Task { try await first.token(for: "car", minValidity: 0, forceRefresh: true) }
        let b = Task { try await second.token(for: "car", minValidity: 0, forceRefresh: true) }
        // One of them holds the lease and is at Smartcar; the other waits on the lease, not on Smartcar.
        await fixture.gate.waitForArrivals(1)
        fixture.gate.open()
        let (tokenA, tokenB) = (try await a.value, try await b.value)
        #expect(tokenA.accessToken == tokenB.accessToken && tokenA.generation == tokenB.generation)
        #expect(fixture.fake.count(.token) == 1)
        #expect(fixture.fake.isLive(refreshToken: tokenA.refreshToken))
    }

    @Test func aRotatedTokenIsPublishedOnlyOnceStoredAndRetriedUntilItIs() async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager(busyTimeout: .milliseconds(20))
        let stored = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        #expect(manager.snapshot.summary(for: "car", minValidity: 0, now: Date()) != nil)
        try await fixture.forceRefreshWhileStoreIsLocked("car", in: manager) {
            // Persist before publish: the new access token is nowhere to be had, the old one is withdrawn.
            #expect(manager.snapshot.summary(for: "car", minValidity: 0, now: Date()) == nil)
            #expect(fixture.fake.requests.last?.form["refresh_token"] == stored.refreshToken)
        }
        // The retry writes what Smartcar issued; then the key is served from it without another refresh.
        #expect(await manager.writeAllUnsaved() == 0)
        let row = try #require(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car"))
        #expect(row.refreshToken != stored.refreshToken && fixture.fake.isLive(refreshToken: row.refreshToken))
        #expect(try await manager.token(for: "car", minValidity: 0, forceRefresh: false).accessToken == row.accessToken)
        #expect(fixture.fake.count(.token) == 1)
    }

    @Test func unsavedTokensAreWrittenBeforeTheKeyIsUsedAgain() async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager(busyTimeout: .milliseconds(20))
        _ = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        try await fixture.forceRefreshWhileStoreIsLocked("car", in: manager) {}
        // The next caller of the key writes the unsaved tokens first (or awaits the background writer doing it).
        let served = try await manager.token(for: "car", minValidity: 0, forceRefresh: false)
        #expect(fixture.fake.isLive(refreshToken: served.refreshToken))
        #expect(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car")?.refreshToken == served.refreshToken)
        #expect(fixture.fake.count(.token) == 1)
    }

    @Test func aRejectedRefreshTokenMarksTheKeyOnceAndSpendsNothingMore() async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager()
        fixture.gate.open()
        _ = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        _ = fixture.fake.revokeTokens(userID: "car")
        // Forced, then plain: a marked key is never served, however fresh its access token looks.
        for force in [true, true, false, false] {
            do {
                _ = try await manager.token(for: "car", minValidity: 0, forceRefresh: force)
                Issue.record("a revoked grant was served")
            } catch AgentError.reauthRequired(let key, _, _) {
                #expect(key == "car")
            }
        }
        #expect(fixture.fake.count(.token) == 1)
        #expect(fixture.reauthEvents == 1)
        #expect(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car")?.needsReauth == true)
        #expect(manager.snapshot.summary(for: "car", minValidity: 0, now: Date()) == nil)
    }
}

/// Keys are compared byte for byte: canonically equivalent spellings are different keys (issue 12, class 1).
@Suite struct KeyIdentityTests {
    /// Pairs of keys Swift's `String ==` calls equal but whose bytes differ: NFC against NFD, singletons
    /// (Angstrom sign, Ohm sign) against their letters, combining marks in either order, Hangul syllables
    /// against their jamo.
    static func equivalentPairs(count: Int, seed: UInt64) -> [(String, String)] {
        var generator = SeededGenerator(seed: seed)
        let bases = [
            "café", "\u{212B}sa", "\u{2126}mega", "ñandú", "한국", "ễ", "naïve", "Zoë", "d\u{307}\u{323}",
            "q\u{301}\u{323}",
        ]
        var pairs: [(String, String)] = []
        var seen = Set<[UInt8]>()
        while pairs.count < count {
            let prefix = "k\(UInt16.random(in: 0...9999, using: &generator))-"
            let raw = (0..<Int.random(in: 1...3, using: &generator)).map { _ in
                bases.randomElement(using: &generator)!
            }.joined()
            let forms = [raw, raw.precomposedStringWithCanonicalMapping, raw.decomposedStringWithCanonicalMapping]
                .map { prefix + $0 }.shuffled(using: &generator)
            guard let second = forms.dropFirst().first(where: { !$0.utf8.elementsEqual(forms[0].utf8) }),
                seen.insert(Array(forms[0].utf8)).inserted, seen.insert(Array(second.utf8)).inserted
            else { continue }
            pairs.append((forms[0], second))
        }
        return pairs
    }

    @Test func theGeneratedPairsAreEqualStringsWithDifferentBytes() {
        for (first, second) in Self.equivalentPairs(count: 40, seed: 12) {
            #expect(first == second && Array(first.utf8) != Array(second.utf8))
        }
    }

    @Test(arguments: [1 as UInt64, 2, 3])
    func equivalentKeysOfDifferentUsersEachGetTheirOwnTokens(seed: UInt64) async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager()
        fixture.gate.open()
        let pairs = Self.equivalentPairs(count: 12, seed: seed)
        let keys = pairs.flatMap { [$0.0, $0.1] }
        var stored: [[UInt8]: StoredToken] = [:]
        for key in keys { stored[Array(key.utf8)] = try await fixture.storeGrant(key, in: manager, expiresIn: 7200) }
        // The snapshot (the hot path) answers each spelling with its own token.
        for key in keys {
            let summary = try #require(manager.snapshot.summary(for: key, minValidity: 0, now: Date()))
            let text = String(decoding: summary.json, as: UTF8.self)
            #expect(text.contains(stored[Array(key.utf8)]!.accessToken))
        }
        // Both spellings of every pair refreshed at once: one refresh each, each its own rotated token.
        let refreshed = try await withThrowingTaskGroup(of: ([UInt8], StoredToken).self) { group in
            for key in keys {
                group.addTask {
                    (Array(key.utf8), try await manager.token(for: key, minValidity: 0, forceRefresh: true))
                }
            }
            return try await group.reduce(into: [[UInt8]: StoredToken]()) { $0[$1.0] = $1.1 }
        }
        #expect(fixture.fake.count(.token) == keys.count)
        let reader = try SQLiteTokenStore.open(
            .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets)
        for key in keys {
            let token = try #require(refreshed[Array(key.utf8)])
            #expect(Array(token.key.utf8) == Array(key.utf8))
            #expect(token.refreshToken != stored[Array(key.utf8)]!.refreshToken)
            #expect(fixture.fake.isLive(refreshToken: token.refreshToken))
            #expect(try await reader.load(key)?.refreshToken == token.refreshToken)
        }
        #expect(Set(refreshed.values.map(\.accessToken)).count == keys.count)
    }
}

/// Operations on a key are linearizable (issue 12, class 3): a forget or a store (an exchange stores the same
/// way) that lands while a refresh of the key is at Smartcar wins, in this process or in another one.
@Suite struct RefreshRaceTests {
    enum Operation: String, CaseIterable, Sendable { case forget, store }

    @Test(arguments: Operation.allCases, [false, true])
    func anOperationLandingDuringARefreshWins(operation: Operation, fromAnotherProcess: Bool) async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager(owner: "manager-A")
        let other = fromAnotherProcess ? try fixture.manager(owner: "manager-B") : manager
        _ = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        let refresh = Task { try await manager.token(for: "car", minValidity: 0, forceRefresh: true) }
        await fixture.gate.waitForArrivals(1)
        var latest: StoredToken?
        switch operation {
        case .forget:
            #expect(try await other.forget("car"))
        case .store:
            // A new owner's grant for the same key, as an exchange would store it.
            latest = try await fixture.storeGrant("car", in: other, expiresIn: 3600)
        }
        fixture.gate.open()
        let outcome = await refresh.result
        let row = try await SQLiteTokenStore.open(
            .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
        ).load("car")
        #expect(fixture.fake.count(.token) == 1)
        if let latest {
            // The refresh's callers get the new owner's tokens, which the store keeps and Smartcar honours.
            #expect(try outcome.get().accessToken == latest.accessToken)
            #expect(row?.refreshToken == latest.refreshToken && row?.accessToken == latest.accessToken)
            #expect(fixture.fake.isLive(refreshToken: latest.refreshToken))
            #expect(
                try await manager.token(for: "car", minValidity: 0, forceRefresh: false).accessToken
                    == latest.accessToken)
        } else {
            #expect(row == nil)
            #expect(throws: AgentError.self) { try outcome.get() }
            await #expect(throws: AgentError.self) {
                try await manager.token(for: "car", minValidity: 0, forceRefresh: false)
            }
        }
    }
}

/// Tokens whose commit failed are written in the background, promptly, without the key being used again
/// (issue 12, class 4); `drainUnsaved` names what is still at risk.
@Suite struct UnsavedTokenTests {
    @Test(.timeLimit(.minutes(1))) func aFailedCommitIsWrittenInTheBackground() async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager(busyTimeout: .milliseconds(20))
        let stored = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        try await fixture.forceRefreshWhileStoreIsLocked("car", in: manager) {
            // While the store stays locked, nothing can be written: the key is named as at risk.
            #expect(await manager.drainUnsaved(within: 0) == ["car"])
        }
        // Nobody touches the manager: its background writer stores the rotated tokens once the lock is gone.
        await fixture.waitForEvent { event in
            if case .changed(let key, "refreshed", _, _) = event { key == "car" } else { false }
        }
        try #require(!Task.isCancelled, "the rotated tokens were not written in the background")
        let row = try #require(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car"))
        #expect(row.refreshToken != stored.refreshToken && fixture.fake.isLive(refreshToken: row.refreshToken))
        #expect(await manager.drainUnsaved(within: 0) == [])
        #expect(fixture.fake.count(.token) == 1)
    }

    /// Callers of a key whose tokens wait in memory share one write of them. When a save fails while that write
    /// runs, newer tokens are pending as it ends: the callers that waited on it go on to those, and none loops on
    /// the finished write (awaiting a finished task does not give up the actor: it would stall every key). A
    /// search over rounds, since whether the second caller is already waiting when the write ends is timing.
    @Test(.timeLimit(.minutes(1))) func callersOfAWriteThatEndsWithNewerTokensPendingGoOn() async throws {
        let fixture = try ManagerFixture()
        var steered: SteeredStore?
        // No background writer during the rounds: the callers alone write what is pending.
        let manager = try fixture.manager(adjust: { $0.retryBackoff = 3600...3600 }) { store in
            let created = SteeredStore(store)
            steered = created
            return created
        }
        let store = try #require(steered)
        for round in 0..<20 {
            let key = "car-\(round)"
            // Valid for hours: however slow the run, nothing is refreshed (the fixture's Smartcar gate stays shut).
            let storeLongGrant = { try await fixture.storeGrant(key, in: manager, expiresIn: 7200) }
            store.steer(.fail)
            await #expect(throws: AgentError.self) { try await storeLongGrant() }
            store.steer(.hold)
            let first = Task { try await manager.token(for: key, minValidity: 0, forceRefresh: false) }
            await store.waitForHeldSave()
            let second = Task { try await manager.token(for: key, minValidity: 0, forceRefresh: false) }
            store.steer(.fail)
            await #expect(throws: AgentError.self) { try await storeLongGrant() }
            store.releaseHeld()
            let (a, b) = (try await first.value, try await second.value)
            #expect(a.accessToken == b.accessToken, "round \(round)")
        }
        #expect(await manager.drainUnsaved(within: 0) == [])
    }

    @Test func drainUnsavedWritesWhatIsPendingWithinItsTime() async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager(busyTimeout: .milliseconds(20))
        _ = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        try await fixture.forceRefreshWhileStoreIsLocked("car", in: manager) {}
        #expect(await manager.drainUnsaved(within: 30) == [])
        let row = try #require(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car"))
        #expect(fixture.fake.isLive(refreshToken: row.refreshToken))
    }
}

/// A refresh whose answer was lost after Smartcar rotated the token is sent again with the same refresh token
/// inside Smartcar's reuse window, instead of failing and leaving the key to die (issue 12, class 5).
@Suite struct LostAnswerTests {
    @Test func aRefreshWhoseAnswerWasLostIsRecoveredWithTheSameRefreshToken() async throws {
        var options = FakeSmartcar.Options()
        options.refreshReuse = .grace(60)
        let fixture = try ManagerFixture(fakeOptions: options)
        let manager = try fixture.manager()
        fixture.gate.open()
        let stored = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        fixture.fake.inject(.dropAfterHandling, on: .token)
        let token = try await manager.token(for: "car", minValidity: 0, forceRefresh: true)
        #expect(fixture.fake.count(.token) == 2)
        #expect(fixture.fake.requests.filter { $0.form["refresh_token"] == stored.refreshToken }.count == 2)
        #expect(fixture.fake.isLive(refreshToken: token.refreshToken))
        #expect(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car")?.refreshToken == token.refreshToken)
        // The key lives on: the next refresh spends the stored token without a word of re-authorization.
        let next = try await manager.token(for: "car", minValidity: 0, forceRefresh: true)
        #expect(fixture.fake.isLive(refreshToken: next.refreshToken) && fixture.reauthEvents == 0)
    }
}

/// `getToken` never silently answers a token valid for less than `minValidity`. When Smartcar issues a shorter
/// one the answer is `upstreamError` (naming both when the lifetime is usable at all: a lifetime under a second
/// is refused as an unusable answer), and the rotated tokens are stored all the same.
@Suite struct ShortTokenTests {
    @Test(arguments: [(0, 0.0), (0, 300), (60, 300)])
    func aTokenShorterThanMinValidityIsRefusedButKept(lifetime: Int, minValidity: Double) async throws {
        var options = FakeSmartcar.Options()
        options.accessTokenLifetime = lifetime
        let fixture = try ManagerFixture(fakeOptions: options)
        let manager = try fixture.manager()
        fixture.gate.open()
        let stored = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        do {
            let token = try await manager.token(for: "car", minValidity: minValidity, forceRefresh: true)
            Issue.record("answered a token valid for \(token.expiresAt.timeIntervalSinceNow) s")
        } catch let error as SmartcarError {
            #expect(error.kind == .upstreamError)
            if lifetime > 0 { #expect(error.details["minValidity"] == .int(Int64(minValidity))) }
        }
        let row = try #require(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car"))
        #expect(row.refreshToken != stored.refreshToken && fixture.fake.isLive(refreshToken: row.refreshToken))
    }
}

/// A refresh answer that Smartcar rotated the token for but that is otherwise unusable (RFC 6749 section 6).
@Suite struct RotatedTokenTests {
    @Test(arguments: [(nil, ["access_token"]), ("0", []), ("-5", ["scope"])] as [(String?, [String])])
    func anUnusableAnswerKeepsItsRotatedRefreshToken(expiresIn: String?, omit: [String]) async throws {
        let fixture = try ManagerFixture()
        let manager = try fixture.manager()
        fixture.gate.open()
        let stored = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        fixture.fake.inject(.hostileAnswer(expiresIn: expiresIn, omit: omit), on: .token)
        await #expect(throws: SmartcarError.self) {
            try await manager.token(for: "car", minValidity: 0, forceRefresh: true)
        }
        // The spent refresh token is replaced by the one the answer carried, which Smartcar holds live.
        let row = try #require(
            try await SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets
            )
            .load("car"))
        #expect(row.refreshToken != stored.refreshToken && fixture.fake.isLive(refreshToken: row.refreshToken))
        #expect(row.accessToken == stored.accessToken)
        // So the next refresh works, with no reauthRequired.
        let next = try await manager.token(for: "car", minValidity: 0, forceRefresh: true)
        #expect(next.accessToken != stored.accessToken && fixture.fake.count(.token) == 2)
    }
}
