import Foundation

/// The durable token store as the agent sees it, whatever holds the rows (SQLite file, memory, later a server).
///
/// A store is opened FOR one application (a Smartcar client id, `application`) and only ever reads, refreshes,
/// lists and deletes that application's rows and Connect states: two applications can keep keys of the same name
/// in one store without seeing each other. `lookup` tells "unknown key" from "this key belongs to another
/// application", so the agent can answer a clear error.
///
/// Every mutation of a row (save, refresh commit, delete, needs-reauth mark; a lease is not one) appends a
/// `StoreChange` to the store's change log in the same transaction, tagged with `origin` (the agent that made it).
/// How an agent is meant to stay coherent with the others on the store, without touching the store on its hot
/// path (a cached `getToken` reads only memory):
/// 1. At start, before loading anything: `let mark = try await store.latestChange()`.
/// 2. One follower per agent: `store.changeFollower(after: mark)`; a background task calls `poll()` every few
///    tens of milliseconds. `poll()` costs no table scan (SQLite: `PRAGMA data_version` on its own connection)
///    and answers `.nothingNew` almost always.
/// 3. For each `StoreChange` polled: drop the in-memory snapshot of `change.key` (the next `getToken` loads the
///    row) and, for changes whose `origin` is not this agent, send the notification the kind calls for.
/// 4. `.fellBehind`: entries the follower had not read were pruned (`changeLogCapacity`); drop every snapshot.
///
/// Connect across agents: `buildConnectURL` issues its state with `issueState` (the redirect URI and Connect
/// options in `ConnectState.options`, capacity as `Limits`), `handleRedirect` in any agent `consumeState`s it,
/// and the maintenance loop calls `pruneStates`. The exchange saves the grant with `kind: .exchanged` and
/// `connectOptions` set, which refreshes keep, so a re-authorization URL can be built from the row. A key
/// `lookup` answers `.otherApplication` for gets an error naming that, instead of `unknownKey`.
///
/// Durability: a mutating method returns once its write is committed durably. Methods are not cancellable.
package protocol TokenStore: Sendable {
    /// The application (Smartcar client id) whose rows this store reads and writes. "" means none is configured:
    /// such a store sees only rows written without an application, and never claims rows (see `Schema`).
    var application: String { get }
    /// Who this store's changes are attributed to in the change log (an agent id).
    var origin: String { get }

    /// The application's row for `key`, or nil if it has none.
    func load(_ key: String) async throws(StoreError) -> StoredToken?
    /// The application's row for `key`, or whether only other applications have one.
    func lookup(_ key: String) async throws(StoreError) -> KeyLookup
    /// The application's rows, ordered by key.
    func list() async throws(StoreError) -> [StoredToken]
    /// How many keys the application has.
    func count() async throws(StoreError) -> Int

    /// Inserts or replaces the row for `token.key` with a new generation (1 for a new key), clearing
    /// `needsReauth` and any lease, recording `token.connectOptions` as given; logs a change of kind `kind`
    /// (`.stored` or `.exchanged`). `token.generation` is ignored. Returns the row as written.
    @discardableResult
    func save(_ token: StoredToken, kind: ChangeKind) async throws(StoreError) -> StoredToken
    /// `save(_:kind:)`, fenced: only if this application's `token.key` has no change-log entry (of any origin or
    /// kind) after `sequence`, checked inside the write transaction; else `.superseded` and nothing is written.
    /// For tokens whose save failed, written again later: `sequence` is `latestChange()` read after the failure,
    /// so a store, exchange, refresh, forget or needs-reauth mark of the key that came later wins. When entries
    /// after `sequence` were pruned the log cannot tell, and it answers `.superseded`: dropping a write its
    /// caller was told had failed is the lesser harm than overwriting a later grant.
    func save(
        _ token: StoredToken, kind: ChangeKind, unlessChangedAfter sequence: Int64
    ) async throws(StoreError) -> FencedSave
    /// Removes the row; answers whether there was one (then a `.forgotten` change is logged).
    @discardableResult
    func delete(_ key: String) async throws(StoreError) -> Bool
    /// Marks the key as needing Connect again, but only if its stored refresh token is still
    /// `rejectedRefreshToken` (another process may have rotated it meanwhile, and the new one is fine).
    /// Answers whether it marked the row (then a `.reauthRequired` change is logged). Leaves any lease alone.
    @discardableResult
    func markNeedsReauth(_ key: String, rejectedRefreshToken: String) async throws(StoreError) -> Bool
    /// Keys whose refresh token ends before `date`, soonest first, at most `limit`; rows needing Connect again
    /// are skipped.
    func keysWithRefreshExpiringBefore(_ date: Date, limit: Int) async throws(StoreError) -> [String]

    /// Leases make refreshes single-flight across processes: only the lease holder spends the refresh token.
    /// Atomically: re-reads the row; if another owner holds an unexpired lease (and `holderIsGone` does not say
    /// its process is dead), answers `.heldByOther`; otherwise takes or extends the lease until `now + duration`
    /// and answers `.acquired(row)`. A missing key answers `.acquired(nil)` and writes nothing. Not a change.
    func acquireLease(
        _ key: String, owner: String, duration: TimeInterval, now: Date,
        holderIsGone: @escaping @Sendable (String) -> Bool
    ) async throws(StoreError) -> LeaseOutcome
    /// Writes the tokens a refresh obtained (generation + 1, `lastRefreshedAt` = `token.lastRefreshedAt ?? now`,
    /// `needsReauth` and the lease cleared, the row's Connect options kept). With `spent`, fenced: only while the
    /// row is still the one the refresh spent (same generation and refresh token), else `.superseded` and nothing
    /// is written. Without `spent` (a process that owns the store alone: bench, tests) it always writes.
    /// Logs a `.refreshed` change when it writes.
    func commitRefresh(
        _ token: StoredToken, owner: String, replacing spent: StoredToken?, now: Date
    ) async throws(StoreError) -> RefreshCommit
    /// Clears the lease if `owner` holds it (expired or not); answers whether it did. Not a change.
    @discardableResult
    func releaseLease(_ key: String, owner: String) async throws(StoreError) -> Bool

    /// Remembers a Connect `state` for this application until it is consumed or expires. Drops the
    /// application's expired states, then its oldest ones beyond `capacity`.
    func issueState(_ state: ConnectState, capacity: Int, now: Date) async throws(StoreError)
    /// Consumes `state` once: across every process on the store exactly one caller gets `.valid`; later ones
    /// get `.reused` until the state would have expired, then `.unknown` once it is pruned.
    func consumeState(_ state: String, now: Date) async throws(StoreError) -> StateClaim
    /// Removes every application's states that expired before `now`; answers how many.
    func pruneStates(now: Date) async throws(StoreError) -> Int

    /// The sequence number of the newest change in the log (0 when there is none): where a follower starts.
    func latestChange() async throws(StoreError) -> Int64
    /// The application's changes after `sequence`, oldest first, at most `limit`; or `.fellBehind` when entries
    /// after `sequence` were already pruned.
    func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> ChangeBatch
    /// A follower of this application's changes after `sequence`, for one agent's background task.
    func changeFollower(after sequence: Int64) async throws(StoreError) -> any ChangeFollower

    /// Inserts or replaces `tokens` in one transaction, keeping each `generation` and `needsReauth` as given.
    /// Only for building large stores fast in benchmarks and tests: logs no change.
    func bulkInsertForBenchmark(_ tokens: [StoredToken]) async throws(StoreError)
    /// Finishes the work already handed to the store, then closes it. Later calls throw `.closed`.
    func close() async
}

/// What `lookup` found for a key.
package enum KeyLookup: Sendable, Equatable {
    case found(StoredToken)
    /// No application has the key.
    case unknown
    /// The key exists, but only for other applications (their rows are never shown).
    case otherApplication
}

extension TokenStore {
    /// Saves tokens stored by a client (`storeToken`).
    @discardableResult
    package func save(_ token: StoredToken) async throws(StoreError) -> StoredToken {
        try await save(token, kind: .stored)
    }

    package func acquireLease(
        _ key: String, owner: String, duration: TimeInterval, now: Date
    ) async throws(StoreError) -> LeaseOutcome {
        try await acquireLease(key, owner: owner, duration: duration, now: now, holderIsGone: { _ in false })
    }

    /// An unfenced refresh commit (see `commitRefresh(_:owner:replacing:now:)`): always writes.
    @discardableResult
    package func commitRefresh(
        _ token: StoredToken, owner: String, now: Date = Date()
    ) async throws(StoreError) -> StoredToken {
        guard case .committed(let written) = try await commitRefresh(token, owner: owner, replacing: nil, now: now)
        else { preconditionFailure("an unfenced commit always writes") }
        return written
    }

    /// A fenced refresh commit at the current time.
    package func commitRefresh(
        _ token: StoredToken, owner: String, replacing spent: StoredToken
    ) async throws(StoreError) -> RefreshCommit {
        try await commitRefresh(token, owner: owner, replacing: spent, now: Date())
    }
}
