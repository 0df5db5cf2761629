import AgentSupport
import Foundation
import Synchronization

/// Everything a `MemoryTokenStore` holds, shared by every store opened on it (as processes share a SQLite file):
/// each operation runs under one lock, which plays the part of SQLite's write transaction.
package final class MemoryTokenDatabase: Sendable {
    fileprivate struct StateEntry {
        var state: ConnectState
        var serial: Int64
        var consumed: Bool
    }

    fileprivate struct Tables {
        var tokens: [String: [String: TokenRow]] = [:]
        var states: [String: [String: StateEntry]] = [:]
        var stateSerial: Int64 = 0
        var changes: [(application: String, change: StoreChange)] = []
        var nextSequence: Int64 = 1
        var prunedThrough: Int64 = 0
        var unboundRowsClaimable = true
    }

    fileprivate let tables = Mutex(Tables())

    /// An empty database, or one holding `unboundRows`: rows written before rows had an application, which the
    /// first store opened on it for an application claims (as after a SQLite schema upgrade).
    package init(unboundRows: [StoredToken] = []) {
        tables.withLock { tables in
            for token in unboundRows { tables.tokens["", default: [:]][token.key] = TokenRow(token: token) }
        }
    }
}

/// The token store in memory, with the same semantics as `SQLiteTokenStore` (application binding, leases,
/// generations, fenced commits, change log, Connect states), proven by the backend conformance suite. Nothing
/// survives the process; for fast tests.
package final class MemoryTokenStore: TokenStore {
    package let application: String
    package let origin: String
    private let database: MemoryTokenDatabase
    private let changeLogCapacity: Int
    private let logger: Logger
    private let closed = Atomic(false)

    /// A store for `application` on `database`; claims the database's unbound rows if it is the first to.
    package init(
        database: MemoryTokenDatabase = MemoryTokenDatabase(), application: String, origin: String = "memory",
        changeLogCapacity: Int = defaultChangeLogCapacity, logger: Logger = .silent
    ) {
        self.database = database
        self.application = application
        self.origin = origin
        self.changeLogCapacity = max(changeLogCapacity, 1)
        self.logger = logger
        guard !application.isEmpty else { return }
        let claimed = database.tables.withLock { tables -> Int in
            guard tables.unboundRowsClaimable else { return 0 }
            tables.unboundRowsClaimable = false
            let unbound = tables.tokens.removeValue(forKey: "") ?? [:]
            tables.tokens[application, default: [:]].merge(unbound) { own, _ in own }
            return unbound.count
        }
        if claimed > 0 {
            logger.notice(
                "token store memory: \(claimed) key\(claimed == 1 ? "" : "s") stored before keys were bound to an application now belong to application \(application)"
            )
        }
    }

    /// Runs `body` on the tables under the lock, unless the store was closed.
    private func access<T>(_ body: (inout MemoryTokenDatabase.Tables) throws(StoreError) -> T) throws(StoreError) -> T {
        guard !closed.load(ordering: .acquiring) else { throw StoreError(.closed, "the token store was closed") }
        return try database.tables.withLock { tables throws(StoreError) in try body(&tables) }
    }

    package func load(_ key: String) async throws(StoreError) -> StoredToken? {
        try access { $0.tokens[application]?[key]?.token }
    }

    package func lookup(_ key: String) async throws(StoreError) -> KeyLookup {
        let application = self.application
        return try access { tables in
            if let row = tables.tokens[application]?[key] { return .found(row.token) }
            let elsewhere = tables.tokens.contains { $0.key != application && $0.value[key] != nil }
            return elsewhere ? .otherApplication : .unknown
        }
    }

    package func list() async throws(StoreError) -> [StoredToken] {
        try access { tables in
            (tables.tokens[application] ?? [:]).values.map(\.token).sorted {
                $0.key.utf8.lexicographicallyPrecedes($1.key.utf8)
            }
        }
    }

    package func count() async throws(StoreError) -> Int {
        try access { $0.tokens[application]?.count ?? 0 }
    }

    package func save(_ token: StoredToken, kind: ChangeKind) async throws(StoreError) -> StoredToken {
        try access { tables in
            let written = write(token, lastRefreshedAt: token.lastRefreshedAt, keepConnectOptions: false, &tables)
            append(token.key, kind, &tables)
            return written
        }
    }

    package func save(
        _ token: StoredToken, kind: ChangeKind, unlessChangedAfter sequence: Int64
    ) async throws(StoreError) -> FencedSave {
        let application = self.application
        return try access { tables in
            // As `ChangeRows.keyChanged`: pruned entries after `sequence` count as a change; keys compare by bytes.
            let start = tables.changes.partitioningIndex { $0.change.sequence > sequence }
            let changed =
                sequence < tables.prunedThrough
                || tables.changes[start...].contains {
                    $0.application == application && $0.change.key.utf8.elementsEqual(token.key.utf8)
                }
            if changed { return .superseded }
            let written = write(token, lastRefreshedAt: token.lastRefreshedAt, keepConnectOptions: false, &tables)
            append(token.key, kind, &tables)
            return .saved(written)
        }
    }

    package func delete(_ key: String) async throws(StoreError) -> Bool {
        try access { tables in
            guard tables.tokens[application]?.removeValue(forKey: key) != nil else { return false }
            append(key, .forgotten, &tables)
            return true
        }
    }

    package func markNeedsReauth(_ key: String, rejectedRefreshToken: String) async throws(StoreError) -> Bool {
        try access { tables in
            guard let row = tables.tokens[application]?[key], row.token.refreshToken == rejectedRefreshToken else {
                return false
            }
            tables.tokens[application]?[key]?.token.needsReauth = true
            append(key, .reauthRequired, &tables)
            return true
        }
    }

    package func keysWithRefreshExpiringBefore(_ date: Date, limit: Int) async throws(StoreError) -> [String] {
        try access { tables in
            let due = (tables.tokens[application] ?? [:]).values.compactMap { row -> (Date, String)? in
                guard let end = row.token.refreshExpiresAt, end < date, !row.token.needsReauth else { return nil }
                return (end, row.token.key)
            }
            return due.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1.utf8.lexicographicallyPrecedes($1.1.utf8) }
                .prefix(max(limit, 0)).map(\.1)
        }
    }

    package func acquireLease(
        _ key: String, owner: String, duration: TimeInterval, now: Date,
        holderIsGone: @escaping @Sendable (String) -> Bool
    ) async throws(StoreError) -> LeaseOutcome {
        try access { tables in
            guard let row = tables.tokens[application]?[key] else { return .acquired(nil) }
            if let refusal = LeaseRules.refusal(row, owner: owner, now: now, holderIsGone: holderIsGone, logger: logger)
            {
                return refusal
            }
            tables.tokens[application]?[key]?.leaseOwner = owner
            tables.tokens[application]?[key]?.leaseExpiresAt = now.addingTimeInterval(duration)
            return .acquired(row.token)
        }
    }

    package func commitRefresh(
        _ token: StoredToken, owner: String, replacing spent: StoredToken?, now: Date
    ) async throws(StoreError) -> RefreshCommit {
        try access { tables in
            let row = tables.tokens[application]?[token.key]
            if LeaseRules.isSuperseded(row, key: token.key, spent: spent, owner: owner, logger: logger) {
                if let row, row.leaseOwner == owner { clearLease(token.key, &tables) }
                return .superseded(current: row?.token)
            }
            LeaseRules.warnAboutLease(row, key: token.key, owner: owner, now: now, logger: logger)
            let written = write(token, lastRefreshedAt: token.lastRefreshedAt ?? now, keepConnectOptions: true, &tables)
            append(token.key, .refreshed, &tables)
            return .committed(written)
        }
    }

    package func releaseLease(_ key: String, owner: String) async throws(StoreError) -> Bool {
        try access { tables in
            guard tables.tokens[application]?[key]?.leaseOwner == owner else { return false }
            clearLease(key, &tables)
            return true
        }
    }

    package func issueState(_ state: ConnectState, capacity: Int, now: Date) async throws(StoreError) {
        try access { tables in
            var states = tables.states[application] ?? [:]
            states = states.filter { $0.value.state.expiresAt > now }
            tables.stateSerial += 1
            states[state.state] = .init(state: state, serial: tables.stateSerial, consumed: false)
            let excess = states.count - max(capacity, 1)
            if excess > 0 {
                for oldest in states.values.sorted(by: { $0.serial < $1.serial }).prefix(excess) {
                    states.removeValue(forKey: oldest.state.state)
                }
            }
            tables.states[application] = states
        }
    }

    package func consumeState(_ state: String, now: Date) async throws(StoreError) -> StateClaim {
        try access { tables in
            guard let entry = tables.states[application]?[state] else { return .unknown }
            if entry.consumed { return .reused }
            if entry.state.expiresAt <= now { return .expired }
            tables.states[application]?[state]?.consumed = true
            return .valid(entry.state)
        }
    }

    package func pruneStates(now: Date) async throws(StoreError) -> Int {
        try access { tables in
            var pruned = 0
            for (application, states) in tables.states {
                let kept = states.filter { $0.value.state.expiresAt > now }
                pruned += states.count - kept.count
                tables.states[application] = kept
            }
            return pruned
        }
    }

    package func latestChange() async throws(StoreError) -> Int64 {
        try access { tables in max(tables.changes.last?.change.sequence ?? 0, tables.prunedThrough) }
    }

    package func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> ChangeBatch {
        let application = self.application
        return try access { tables in
            if sequence < tables.prunedThrough {
                return .fellBehind(latest: max(tables.changes.last?.change.sequence ?? 0, tables.prunedThrough))
            }
            let start = tables.changes.partitioningIndex { $0.change.sequence > sequence }
            let mine = tables.changes[start...].lazy.filter { $0.application == application }.map(\.change)
            return .changes(Array(mine.prefix(max(limit, 0))))
        }
    }

    package func changeFollower(after sequence: Int64) async throws(StoreError) -> any ChangeFollower {
        PollingChangeFollower(store: self, after: sequence)
    }

    package func bulkInsertForBenchmark(_ tokens: [StoredToken]) async throws(StoreError) {
        try access { tables in
            for token in tokens { tables.tokens[application, default: [:]][token.key] = TokenRow(token: token) }
        }
    }

    package func close() async { closed.store(true, ordering: .releasing) }

    /// New tokens for `token.key`: generation + 1 (1 for a new key), `needsReauth` and the lease cleared.
    private func write(
        _ token: StoredToken, lastRefreshedAt: Date?, keepConnectOptions: Bool,
        _ tables: inout MemoryTokenDatabase.Tables
    ) -> StoredToken {
        let previous = tables.tokens[application]?[token.key]?.token
        var written = token
        written.generation = (previous?.generation ?? 0) + 1
        written.lastRefreshedAt = lastRefreshedAt
        written.needsReauth = false
        if keepConnectOptions, let previous { written.connectOptions = previous.connectOptions }
        tables.tokens[application, default: [:]][token.key] = TokenRow(token: written)
        return written
    }

    private func clearLease(_ key: String, _ tables: inout MemoryTokenDatabase.Tables) {
        tables.tokens[application]?[key]?.leaseOwner = nil
        tables.tokens[application]?[key]?.leaseExpiresAt = nil
    }

    /// Logs a change and prunes the entries beyond the capacity (as `ChangeRows.append`).
    private func append(_ key: String, _ kind: ChangeKind, _ tables: inout MemoryTokenDatabase.Tables) {
        let sequence = tables.nextSequence
        tables.nextSequence += 1
        tables.changes.append(
            (application, StoreChange(sequence: sequence, key: key, kind: kind, origin: origin)))
        let oldest = sequence - Int64(changeLogCapacity)
        let pruned = tables.changes.partitioningIndex { $0.change.sequence > oldest }
        guard oldest > 0, pruned > 0 else { return }
        tables.changes.removeFirst(pruned)
        tables.prunedThrough = max(tables.prunedThrough, oldest)
    }
}

extension Array {
    /// The first index whose element satisfies `belongs`, for an array where those elements all come last.
    fileprivate func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var (low, high) = (0, count)
        while low < high {
            let middle = (low + high) / 2
            if belongs(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
