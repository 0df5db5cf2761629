import AgentSupport
import Foundation
import JSONRPC
import SmartcarOAuth
import TokenStore

/// Hands out access tokens per key: from memory when they are fresh, otherwise refreshed once however many
/// callers ask, in this process (one task per key) and across processes sharing the store (a lease on the
/// key's row). The rotated refresh token is committed to the store before any caller sees the new access token.
///
/// The store is the truth and the only copy of the rows; what is kept in memory is `snapshot`, each key's
/// token summary as the hot path hands it out (a few hundred bytes a key).
actor TokenManager {
    struct Settings: Sendable {
        /// How long a refresh lease on a key's row lasts; shorter than Smartcar's grace for a used refresh token.
        var leaseDuration: TimeInterval = 20
        /// Most random seconds added to a caller's `minValidity`, so a fleet of keys does not refresh in one burst;
        /// only without refresh-ahead, whose per-key windows spread a fleet's refreshes instead.
        var jitter: TimeInterval = 30
        /// Seconds before a caller's `minValidity` stops being met at which a key is refreshed in the background
        /// (`RefreshAhead`); 0: refreshes start only when a caller must wait.
        var refreshAhead: TimeInterval = 900
        /// First and longest pause between looks at a key another process is refreshing.
        var leasePollInterval: ClosedRange<TimeInterval> = 0.005...0.1
        /// Names this manager as a lease holder in the shared store (one per process; tests run two).
        var leaseOwner = LeaseOwner.current
        /// First and longest pause between background attempts to write tokens whose commit failed.
        var retryBackoff: ClosedRange<TimeInterval> = 0.05...1
        /// How many times a refresh whose answer may have been lost (timeout, connection dropped after
        /// sending) is sent again with the same refresh token, and until how long after the first send:
        /// Smartcar keeps a used refresh token valid at least 60 s, so the retry gets the rotated tokens.
        var lostAnswerRetries = 2
        var reuseWindow: TimeInterval = 45
    }

    /// Tokens Smartcar issued (or a client gave) whose write failed, kept until written.
    private struct Pending {
        var token: StoredToken
        /// For a refresh's tokens: the row the refresh spent. They are written only while the key's row is
        /// still that one (a later forget, store or exchange wins); nil for tokens a client stored.
        var spent: StoredToken?
        /// For tokens a client stored or an exchange got: the store's newest change when their save failed. They
        /// are written only if the key has not changed since (a later store, exchange, refresh or forget by any
        /// agent wins); nil if it could not be read either, then they are written whatever the row holds.
        var base: Int64? = nil
        /// How the tokens came (`.stored`, `.exchanged`; `.refreshed` for a refresh's), for the change log.
        var kind: ChangeKind
    }

    /// What happened to a key, for `tokenChanged` / `reauthRequired` notifications. `origin`: the agent
    /// that made the change, when it is another agent on the store (nil: this one).
    enum Event: Sendable {
        case changed(key: String, reason: String, expiresAt: Date?, origin: String? = nil)
        case reauthRequired(key: String, reason: String, origin: String? = nil)
    }

    private let store: any TokenStore
    private let smartcar: SmartcarClient
    private let upstream: UpstreamLimiter
    private let clock: any WallClock
    private let logger: Logger
    private let settings: Settings
    private let onEvent: @Sendable (Event) -> Void
    /// Identifies this manager as a lease holder in the shared store.
    private var owner: String { settings.leaseOwner }
    /// What `getToken` is answered from on the reading thread: rows just read from or committed to the
    /// store, see `offer`.
    nonisolated let snapshot: TokenSnapshot
    /// Drops from `snapshot` what other agents on the store change.
    private let changes: StoreChangeWatch

    /// One refresh per key at a time; every caller of that key awaits the same task. Every map here is keyed
    /// byte for byte (`TokenKey`), as the store keys its rows.
    private var refreshes: [TokenKey: Task<StoredToken, any Error>] = [:]
    /// The keys whose running refresh is an early one (`refreshAhead(_:minValidity:)`): their callers that the
    /// current token satisfies get it without waiting.
    private var early: Set<TokenKey> = []
    /// Tokens Smartcar issued whose commit failed; written again before anything else touches the key.
    private var unsaved: [TokenKey: Pending] = [:]
    /// The background writer of `unsaved`, running while anything is unsaved.
    private var retrying: Task<Void, Never>?
    /// The write of each key's unsaved tokens under way, if any.
    private var writes: [TokenKey: Task<Void, any Error>] = [:]

    init(
        store: any TokenStore, smartcar: SmartcarClient, upstream: UpstreamLimiter, clock: any WallClock,
        logger: Logger,
        settings: Settings = .init(), onEvent: @escaping @Sendable (Event) -> Void
    ) {
        self.store = store
        self.smartcar = smartcar
        self.upstream = upstream
        self.clock = clock
        self.logger = logger
        self.settings = settings
        self.onEvent = onEvent
        let snapshot = TokenSnapshot(margin: Self.roundingAllowance + (settings.refreshAhead > 0 ? 0 : settings.jitter))
        self.snapshot = snapshot
        changes = StoreChangeWatch(store: store, logger: logger) { event in
            switch event {
            case .changed(let change):
                snapshot.invalidate(change.key)
                onEvent(await Self.event(for: change, in: store))
            case .everything: snapshot.invalidateAll()
            }
        }
    }

    /// The notification for another agent's change: its kind as the reason, and for new tokens the expiry of
    /// the row as it is now (nil if it changed again since).
    private static func event(for change: StoreChange, in store: any TokenStore) async -> Event {
        switch change.kind {
        case .reauthRequired:
            return .reauthRequired(key: change.key, reason: "refresh token rejected", origin: change.origin)
        case .forgotten:
            return .changed(key: change.key, reason: "forgotten", expiresAt: nil, origin: change.origin)
        case .stored, .exchanged, .refreshed:
            let row = try? await store.load(change.key)
            return .changed(
                key: change.key, reason: change.kind.rawValue, expiresAt: row?.expiresAt, origin: change.origin)
        }
    }

    // MARK: getToken

    /// A token for `key` valid for at least `minValidity` seconds (plus jitter), refreshing it if needed.
    /// `rejected`: the access token an API call just refused: refreshed once if it is still the key's, however
    /// many callers report it; if the key holds another token already, that one is answered (`CompareAndRefresh`).
    func token(
        for key: String, minValidity: TimeInterval, forceRefresh: Bool, rejected: String? = nil
    ) async throws -> StoredToken {
        if let running = refreshes[TokenKey(key)], forceRefresh || rejected != nil || !early.contains(TokenKey(key)) {
            return try validFor(minValidity, try await running.value)
        }
        try await writeUnsaved(key)
        await changes.started()
        let changesSeen = snapshot.changesSeen
        let found = try await storage { try await store.lookup(key) }
        let current: StoredToken?
        if case .found(let row) = found { current = row } else { current = nil }
        guard let current, !current.needsReauth else {
            snapshot.withdraw(key)
            if found == .otherApplication { throw AgentError.unknownKey(key, otherApplication: true) }
            if current == nil { throw AgentError.unknownKey(key) }
            throw AgentError.reauthRequired(key, reason: "Smartcar rejected the stored refresh token")
        }
        let jitter = settings.refreshAhead > 0 ? 0 : Double.random(in: 0...settings.jitter)
        let margin = minValidity + Self.roundingAllowance + jitter
        let stillGood = rejected.map { $0 != current.accessToken } ?? !forceRefresh
        if stillGood && current.expiresAt.timeIntervalSince(clock.now()) > margin {
            offer(current, for: key, readAt: changesSeen)
            return current
        }
        let task = refresh(key, seen: current, minValidity: minValidity, rejected: rejected)
        return try validFor(minValidity, try await task.value)
    }

    /// `token` if it stays valid `minValidity` seconds; otherwise (Smartcar issued a token shorter than that)
    /// `upstreamError` naming both, never a silently short token. The token is stored all the same.
    private func validFor(_ minValidity: TimeInterval, _ token: StoredToken) throws -> StoredToken {
        let remaining = token.expiresAt.timeIntervalSince(clock.now()).rounded(.down)
        guard remaining < minValidity else { return token }
        let seconds = remaining.isFinite ? Int64(max(-1e9, min(1e9, remaining))) : 0
        throw SmartcarError(
            .upstreamError,
            "Smartcar issued an access token valid for \(max(0, seconds)) s, less than minValidity (\(Int64(minValidity)) s); ask again with a lower minValidity to use it",
            details: ["expiresIn": .int(max(0, seconds)), "minValidity": .int(Int64(minValidity))])
    }

    /// Starts (or joins) the one refresh of `key`. The task is not a child of any caller: a cancelled caller
    /// stops waiting, but the refresh runs to its end so a rotated token is always stored.
    private func refresh(
        _ key: String, seen: StoredToken, minValidity: TimeInterval, rejected: String? = nil
    ) -> Task<StoredToken, any Error> {
        if let running = refreshes[TokenKey(key)] { return running }
        let task = Task { [self] in
            defer { refreshEnded(key) }
            return try await refreshUnderLease(key, seen: seen, minValidity: minValidity, rejected: rejected)
        }
        refreshes[TokenKey(key)] = task
        // Callers of the key now join the refresh. The next one after it re-reads the row and offers it again.
        snapshot.withdraw(key)
        return task
    }

    private func refreshEnded(_ key: String) { refreshes[TokenKey(key)] = nil }

    /// A caller on the hot path found `key`'s token inside its early window (`RefreshAhead`): starts the key's
    /// refresh in the background, unless one runs or the key already moved on. Callers the current token
    /// satisfies keep getting it from the snapshot; the others join the refresh. The new token is published when
    /// committed. A failure is logged once and changes nothing callers see: the row and its refresh token stay
    /// as they were, and the next caller that needs a newer token refreshes it as without refresh-ahead.
    func refreshAhead(_ key: String, minValidity: TimeInterval) async {
        let id = TokenKey(key)
        guard refreshes[id] == nil, unsaved[id] == nil else { return }
        await changes.started()
        let changesSeen = snapshot.changesSeen
        guard case .found(let current)? = try? await store.lookup(key), !current.needsReauth, refreshes[id] == nil,
            unsaved[id] == nil
        else { return }
        let remaining = current.expiresAt.timeIntervalSince(clock.now())
        guard remaining <= minValidity + Self.roundingAllowance + ahead.window(for: current) else {
            // Another agent on the store refreshed it already.
            offer(current, for: key, readAt: changesSeen)
            return
        }
        early.insert(id)
        let task = Task { [self] in
            do {
                let token = try await refreshUnderLease(key, seen: current, minValidity: minValidity, rejected: nil)
                earlyRefreshEnded(key, .success(token), readAt: changesSeen)
                return token
            } catch {
                earlyRefreshEnded(key, .failure(error), readAt: changesSeen)
                throw error
            }
        }
        refreshes[id] = task
    }

    private func earlyRefreshEnded(_ key: String, _ outcome: Result<StoredToken, any Error>, readAt: UInt64) {
        refreshes[TokenKey(key)] = nil
        early.remove(TokenKey(key))
        switch outcome {
        case .success(let token):
            offer(token, for: key, readAt: readAt)
        case .failure(let error):
            let kind = Self.kindName(error)
            // A failure of Smartcar or of the store leaves the current token on the hot path (its early refresh
            // is not asked for again, so nothing is retried or logged per request): callers that need a newer one
            // come to the actor and refresh it, or hear the error, as they would have. Re-authorization, a forget,
            // or rotated tokens not yet stored: callers must hear it from the actor.
            let settled = [ErrorKind.reauthRequired.rawValue, ErrorKind.unknownKey.rawValue].contains(kind)
            if settled || unsaved[TokenKey(key)] != nil { snapshot.withdraw(key) }
            logger.warning("key \(key): the refresh ahead of expiry failed (\(kind))")
        }
    }

    /// Returns once the refresh of `key` under way, if any, has ended (whatever its outcome): for tests of
    /// refreshes no caller waits for.
    func refreshFinished(_ key: String) async { _ = try? await refreshes[TokenKey(key)]?.value }

    private var ahead: RefreshAhead { RefreshAhead(seconds: settings.refreshAhead) }

    /// The protocol's name for a failure of a refresh, for a log line (never its message: no secret either way).
    private static func kindName(_ error: any Error) -> String {
        switch error {
        case let error as SmartcarError: ErrorKind(error.kind).rawValue
        case AgentError.reauthRequired: ErrorKind.reauthRequired.rawValue
        case AgentError.unknownKey: ErrorKind.unknownKey.rawValue
        case AgentError.storage: ErrorKind.storageError.rawValue
        default: "\(type(of: error))"
        }
    }
    /// Takes the key's lease (waiting while another process holds it), re-reads the row, and refreshes only if
    /// nobody else already did.
    private func refreshUnderLease(
        _ key: String, seen: StoredToken, minValidity: TimeInterval, rejected: String?
    ) async throws -> StoredToken {
        await upstream.acquire()
        do {
            let token = try await waitForLeaseAndRefresh(key, seen: seen, minValidity: minValidity, rejected: rejected)
            await upstream.release()
            return token
        } catch {
            await upstream.release()
            throw error
        }
    }

    private func waitForLeaseAndRefresh(
        _ key: String, seen: StoredToken, minValidity: TimeInterval, rejected: String?
    ) async throws -> StoredToken {
        var pause = settings.leasePollInterval.lowerBound
        while true {
            let outcome = try await storage {
                try await store.acquireLease(
                    key, owner: owner, duration: settings.leaseDuration, now: clock.now(),
                    holderIsGone: LeaseOwner.isGone)
            }
            switch outcome {
            case .heldByOther(let until, let current):
                if let current, isFresher(current, than: seen, minValidity: minValidity, rejected: rejected) {
                    return current
                }
                logger.debug(
                    "key \(key): another process holds the refresh lease until \(RFC3339.string(until)); waiting")
                try await Task.sleep(for: .seconds(pause))
                pause = min(pause * 2, settings.leasePollInterval.upperBound)
            case .acquired(let row):
                return try await refreshHoldingLease(
                    key, row: row, seen: seen, minValidity: minValidity, rejected: rejected)
            }
        }
    }

    private func refreshHoldingLease(
        _ key: String, row: StoredToken?, seen: StoredToken, minValidity: TimeInterval, rejected: String?
    ) async throws -> StoredToken {
        guard let row else { throw AgentError.unknownKey(key) }
        if row.needsReauth {
            _ = try? await store.releaseLease(key, owner: owner)
            throw AgentError.reauthRequired(key, reason: "Smartcar rejected the stored refresh token")
        }
        if isFresher(row, than: seen, minValidity: minValidity, rejected: rejected) {
            // Another process refreshed between our look and our lease: use its token, spend nothing.
            _ = try? await store.releaseLease(key, owner: owner)
            return row
        }
        let grant: TokenGrant
        do {
            grant = try await refreshRecoveringLostAnswers(key, refreshToken: row.refreshToken)
        } catch {
            if error.kind == .reauthRequired { return try await refreshRejected(key, row: row, error: error) }
            if let rotated = error.rotatedRefreshToken {
                // Smartcar rotated the token but answered unusably: the new refresh token is the only live one,
                // so it replaces the spent one (the access token stays as it was), and the caller hears why.
                var kept = row
                kept.refreshToken = rotated.value
                kept.refreshExpiresAt = clock.now().addingTimeInterval(TokenGrant.refreshTokenLifetime)
                kept.lastRefreshedAt = clock.now()
                _ = try await commitRefreshed(key, kept, replacing: row)
                logger.error(
                    "key \(key): Smartcar's refresh answer was unusable but carried a rotated refresh token; stored it")
                throw error
            }
            _ = try? await store.releaseLease(key, owner: owner)
            throw error
        }
        var refreshed = row
        refreshed.accessToken = grant.accessToken
        refreshed.refreshToken = grant.refreshToken
        refreshed.expiresAt = grant.expiresAt
        refreshed.refreshExpiresAt = grant.refreshExpiresAt
        refreshed.lastRefreshedAt = clock.now()
        return try await commitRefreshed(key, refreshed, replacing: row)
    }

    /// Commits a refresh's rotated tokens, fenced by the row it spent; a failed write keeps them in memory
    /// and retries, and nobody gets the new access token until its refresh token is on disk.
    private func commitRefreshed(
        _ key: String, _ refreshed: StoredToken, replacing row: StoredToken
    ) async throws
        -> StoredToken
    {
        let outcome: RefreshCommit
        do {
            outcome = try await store.commitRefresh(refreshed, owner: owner, replacing: row)
        } catch {
            // Persist before publish: nobody gets the new access token until its refresh token is on disk.
            unsaved[TokenKey(key)] = Pending(token: refreshed, spent: row, kind: .refreshed)
            logger.error(
                "key \(key): could not store the rotated refresh token (\(error)); keeping it in memory and retrying")
            retryInBackground()
            throw AgentError.storage(error)
        }
        switch outcome {
        case .committed(let saved):
            // An early refresh's callers are answered from the snapshot: it holds the new token before anyone is
            // told of it.
            if early.contains(TokenKey(key)) { snapshot.publish(saved, window: ahead.window(for: saved), readAt: nil) }
            onEvent(.changed(key: key, reason: "refreshed", expiresAt: saved.expiresAt))
            return saved
        case .superseded(let current):
            return try superseded(key, current: current)
        }
    }

    /// A forget, store or exchange of `key` landed while its refresh ran, and won: the refresh's callers get
    /// the key's state as it is now.
    private func superseded(_ key: String, current: StoredToken?) throws -> StoredToken {
        logger.notice("key \(key): changed while a refresh ran; the refresh's tokens were discarded")
        guard let current else { throw AgentError.unknownKey(key) }
        if current.needsReauth {
            throw AgentError.reauthRequired(key, reason: "Smartcar rejected the stored refresh token")
        }
        return current
    }

    /// Sends the refresh; if its answer may have been lost after Smartcar got it (and rotated the token), sends
    /// it again with the same refresh token inside Smartcar's reuse window, renewing the key's lease first, so
    /// the key is never given up (nor marked for Connect) over an answer that only went missing. An answer
    /// that arrived with a rotated refresh token is never resent: that token is the live one.
    private func refreshRecoveringLostAnswers(
        _ key: String, refreshToken: String
    ) async throws(SmartcarError) -> TokenGrant {
        let firstSent = ContinuousClock.now
        var retries = 0
        while true {
            do throws(SmartcarError) {
                return try await smartcar.refresh(refreshToken)
            } catch
                where error.details["mayHaveReachedServer"] == .bool(true) && error.rotatedRefreshToken == nil
                && retries < settings.lostAnswerRetries
                && ContinuousClock.now - firstSent < .seconds(settings.reuseWindow)
            {
                retries += 1
                logger.warning(
                    "key \(key): the refresh's answer may have been lost (\(error.kind.rawValue)); sending it again with the same refresh token, inside Smartcar's reuse window"
                )
                _ = try? await store.acquireLease(
                    key, owner: owner, duration: settings.leaseDuration, now: clock.now(),
                    holderIsGone: LeaseOwner.isGone)
            }
        }
    }

    /// Smartcar said `invalid_grant`. Another process may have rotated the token meanwhile: only if the store
    /// still holds the rejected refresh token is the key marked as needing a new Connect.
    private func refreshRejected(_ key: String, row: StoredToken, error: SmartcarError) async throws -> StoredToken {
        let marked = try await storage { try await store.markNeedsReauth(key, rejectedRefreshToken: row.refreshToken) }
        _ = try? await store.releaseLease(key, owner: owner)
        if !marked, let current = try await storage({ try await store.load(key) }), !current.needsReauth {
            return current
        }
        logger.warning("key \(key): Smartcar rejected the refresh token; the user must connect again")
        onEvent(.reauthRequired(key: key, reason: "refresh token rejected"))
        throw AgentError.reauthRequired(key, reason: "Smartcar rejected the refresh token", upstream: error)
    }

    /// True when `row` is a different generation than the caller saw (and no longer holds the access token the
    /// caller reported rejected) and fresh enough to hand out.
    private func isFresher(
        _ row: StoredToken, than seen: StoredToken, minValidity: TimeInterval, rejected: String?
    ) -> Bool {
        row.generation != seen.generation && !row.needsReauth && row.accessToken != rejected
            && row.expiresAt.timeIntervalSince(clock.now()) > minValidity + Self.roundingAllowance
    }

    /// `expiresIn` is whole seconds, rounded down a moment after the check: a token kept with exactly
    /// `minValidity` left would be answered with `expiresIn` one below it.
    private static let roundingAllowance: TimeInterval = 1

    // MARK: exchange, import, forget, list

    /// Stores tokens from a code exchange or an import (replacing whatever the key held) and offers them to
    /// the hot path.
    func save(_ token: StoredToken, kind: ChangeKind) async throws -> StoredToken {
        await changes.started()
        do {
            let changesSeen = snapshot.changesSeen
            let saved = try await store.save(token, kind: kind)
            unsaved[TokenKey(token.key)] = nil
            offer(saved, for: token.key, readAt: changesSeen)
            onEvent(.changed(key: token.key, reason: kind.rawValue, expiresAt: saved.expiresAt))
            return saved
        } catch {
            // A read, which works while another connection holds the write lock or the disk is full.
            let base: Int64?
            do { base = try await store.latestChange() } catch let unreadable {
                base = nil
                logger.warning(
                    "key \(token.key): could not read the change log either (\(unreadable)); the retried write will not yield to later writes of the key"
                )
            }
            unsaved[TokenKey(token.key)] = Pending(token: token, spent: nil, base: base, kind: kind)
            retryInBackground()
            snapshot.withdraw(token.key)
            logger.error("key \(token.key): could not store new tokens (\(error)); keeping them in memory and retrying")
            throw AgentError.storage(error)
        }
    }

    func forget(_ key: String) async throws -> Bool {
        // The forget is the later word on tokens kept after a failed write, even if the delete fails too.
        let hadUnsaved = unsaved.removeValue(forKey: TokenKey(key)) != nil
        let existed = try await storage { try await store.delete(key) }
        snapshot.withdraw(key)
        if existed || hadUnsaved { onEvent(.changed(key: key, reason: "forgotten", expiresAt: nil)) }
        return existed || hadUnsaved
    }

    func list() async throws -> [StoredToken] {
        try await storage { try await store.list() }
    }

    /// Keys whose refresh token ends before `date`, refreshed so an idle key does not die at day 60.
    func refreshKeys(expiringBefore date: Date, limit: Int) async -> Int {
        guard let keys = try? await store.keysWithRefreshExpiringBefore(date, limit: limit) else { return 0 }
        var refreshed = 0
        for key in keys {
            do {
                _ = try await token(for: key, minValidity: 0, forceRefresh: true)
                refreshed += 1
            } catch {
                logger.warning("key \(key): background refresh failed: \(error)")
            }
        }
        return refreshed
    }

    /// Writes tokens held in memory after a failed commit, before the key is used again. A refresh's tokens
    /// are written only while the row is still the one it spent (see `commitRefresh(_:owner:replacing:)`).
    func writeUnsaved(_ key: String) async throws {
        let id = TokenKey(key)
        // One write of a key's pending tokens at a time (the background writer, `drainUnsaved` and the key's
        // next caller may all ask): a second asker awaits the write under way, then looks again.
        while unsaved[id] != nil {
            if let running = writes[id] {
                try await running.value
                continue
            }
            let write = Task { [self] in
                // Removed by the write itself, before it completes: awaiting a finished task does not give up the
                // actor, so an asker that found it still here would loop on it and stall every key.
                defer { writes[id] = nil }
                try await writePendingOnce(key)
            }
            writes[id] = write
            try await write.value
        }
    }

    private func writePendingOnce(_ key: String) async throws {
        let id = TokenKey(key)
        guard let pending = unsaved[id] else { return }
        let saved: StoredToken?
        do {
            if let spent = pending.spent {
                switch try await store.commitRefresh(pending.token, owner: owner, replacing: spent) {
                case .committed(let written): saved = written
                case .superseded: saved = nil
                }
            } else if let base = pending.base {
                switch try await store.save(pending.token, kind: pending.kind, unlessChangedAfter: base) {
                case .saved(let written): saved = written
                case .superseded: saved = nil
                }
            } else {
                saved = try await store.save(pending.token, kind: pending.kind)
            }
        } catch {
            throw AgentError.storage(error)
        }
        // A save or forget may have replaced or dropped the pending tokens meanwhile: theirs is the later word.
        guard unsaved[id]?.token == pending.token else { return }
        unsaved[id] = nil
        guard let saved else {
            logger.notice("key \(key): changed after a write failed; the tokens kept in memory for it were discarded")
            return
        }
        offer(saved, for: key)
        logger.notice("key \(key): tokens kept in memory after a failed write are now stored")
        onEvent(.changed(key: key, reason: pending.kind.rawValue, expiresAt: saved.expiresAt))
    }

    /// Retries every pending write; answers how many are still pending.
    func writeAllUnsaved() async -> Int {
        for key in unsaved.keys { try? await writeUnsaved(key.string) }
        return unsaved.count
    }

    /// Starts the background writer unless it runs: it retries every unsaved write with a pause that doubles
    /// up to `retryBackoff.upperBound`, and meanwhile keeps renewing the lease of every key whose rotated
    /// tokens are unsaved, so no other process re-sends the refresh token they replaced.
    private func retryInBackground() {
        guard retrying == nil else { return }
        retrying = Task { [self] in await retryUntilWritten() }
    }

    private func retryUntilWritten() async {
        var pause = settings.retryBackoff.lowerBound
        while !unsaved.isEmpty {
            await renewLeasesOfUnsaved()
            try? await Task.sleep(for: .seconds(pause))
            if await writeAllUnsaved() == 0 { break }
            pause = min(pause * 2, settings.retryBackoff.upperBound)
        }
        retrying = nil
    }

    private func renewLeasesOfUnsaved() async {
        for (key, pending) in unsaved where pending.spent != nil {
            _ = try? await store.acquireLease(
                key.string, owner: owner, duration: settings.leaseDuration, now: clock.now(),
                holderIsGone: LeaseOwner.isGone)
        }
    }

    /// Keeps writing unsaved tokens for at most `seconds`, for the end of input or a SIGTERM; answers the keys
    /// whose tokens are still unsaved (at risk: logged as an error, they are lost when the process exits).
    func drainUnsaved(within seconds: TimeInterval) async -> [String] {
        let deadline = ContinuousClock.now + .seconds(max(0, seconds))
        var pause = settings.retryBackoff.lowerBound
        while await writeAllUnsaved() > 0 {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { break }
            try? await Task.sleep(for: min(.seconds(pause), left))
            pause = min(pause * 2, settings.retryBackoff.upperBound)
        }
        let atRisk = unsaved.keys.map(\.string).sorted()
        if !atRisk.isEmpty {
            logger.error(
                "rotated or new tokens could not be stored and are lost if the agent exits now, for the keys: \(atRisk.joined(separator: ", "))"
            )
        }
        return atRisk
    }

    /// Offers a usable row just read from or committed to the store (so its refresh token is durable) to the
    /// snapshot the immediate path answers from, unless something is pending for the key: while a refresh runs
    /// its callers must join it, and unsaved tokens must be written before anything is handed out. `readAt`:
    /// `snapshot.changesSeen` before the store call (see `TokenSnapshot.publish(_:readAt:)`).
    private func offer(_ token: StoredToken, for key: String, readAt: UInt64? = nil) {
        let id = TokenKey(key)
        if refreshes[id] == nil || early.contains(id), unsaved[id] == nil {
            snapshot.publish(token, window: ahead.window(for: token), readAt: readAt)
        } else {
            snapshot.withdraw(key)
        }
    }

    /// Runs a store call, turning its failure into `storageError`.
    private func storage<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as StoreError { throw AgentError.storage(error) }
    }
}
