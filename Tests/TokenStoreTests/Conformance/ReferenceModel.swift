import Foundation

@testable import TokenStore

/// The store's rules written as plainly as possible, with no storage at all: what every backend must answer.
/// The seeded random operation sequences compare each backend with it, answer by answer.
struct ReferenceModel {
    struct Row {
        var token: StoredToken
        var leaseOwner: String?
        var leaseUntil: Date?
    }

    struct IssuedState {
        var state: ConnectState
        var serial: Int
        var consumed: Bool
    }

    /// application → key → row
    private(set) var rows: [String: [String: Row]] = [:]
    private var states: [String: [String: IssuedState]] = [:]
    private var serial = 0
    private var log: [(application: String, change: StoreChange)] = []

    var latestChange: Int64 { log.last?.change.sequence ?? 0 }

    func load(_ application: String, _ key: String) -> StoredToken? { rows[application]?[key]?.token }

    func lookup(_ application: String, _ key: String) -> KeyLookup {
        if let row = rows[application]?[key] { return .found(row.token) }
        return rows.contains { $0.key != application && $0.value[key] != nil } ? .otherApplication : .unknown
    }

    func list(_ application: String) -> [StoredToken] {
        (rows[application] ?? [:]).values.map(\.token).sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    func keysWithRefreshExpiringBefore(_ application: String, _ date: Date, limit: Int) -> [String] {
        let due = list(application).filter { ($0.refreshExpiresAt ?? .distantFuture) < date && !$0.needsReauth }
        return Array(due.sorted { $0.refreshExpiresAt! < $1.refreshExpiresAt! }.prefix(limit).map(\.key))
    }

    func changes(_ application: String, after sequence: Int64) -> [StoreChange] {
        log.filter { $0.application == application && $0.change.sequence > sequence }.map(\.change)
    }

    mutating func save(
        _ application: String, _ token: StoredToken, kind: ChangeKind, origin: String
    ) -> StoredToken {
        let written = write(application, token, lastRefreshedAt: token.lastRefreshedAt, options: token.connectOptions)
        logChange(application, token.key, kind, origin)
        return written
    }

    mutating func delete(_ application: String, _ key: String, origin: String) -> Bool {
        guard rows[application]?.removeValue(forKey: key) != nil else { return false }
        logChange(application, key, .forgotten, origin)
        return true
    }

    mutating func markNeedsReauth(_ application: String, _ key: String, rejected: String, origin: String) -> Bool {
        guard rows[application]?[key]?.token.refreshToken == rejected else { return false }
        rows[application]?[key]?.token.needsReauth = true
        logChange(application, key, .reauthRequired, origin)
        return true
    }

    mutating func acquireLease(
        _ application: String, _ key: String, owner: String, duration: TimeInterval, now: Date
    ) -> LeaseOutcome {
        guard let row = rows[application]?[key] else { return .acquired(nil) }
        if let holder = row.leaseOwner, holder != owner, let until = row.leaseUntil, until > now {
            return .heldByOther(until: until, current: row.token)
        }
        rows[application]?[key]?.leaseOwner = owner
        rows[application]?[key]?.leaseUntil = now.addingTimeInterval(duration)
        return .acquired(row.token)
    }

    mutating func commitRefresh(
        _ application: String, _ token: StoredToken, owner: String, spent: StoredToken?, now: Date, origin: String
    ) -> RefreshCommit {
        let row = rows[application]?[token.key]
        if let spent, row?.token.generation != spent.generation || row?.token.refreshToken != spent.refreshToken {
            if row?.leaseOwner == owner { _ = releaseLease(application, token.key, owner: owner) }
            return .superseded(current: row?.token)
        }
        let options = row.map { $0.token.connectOptions } ?? token.connectOptions
        let written = write(application, token, lastRefreshedAt: token.lastRefreshedAt ?? now, options: options)
        logChange(application, token.key, .refreshed, origin)
        return .committed(written)
    }

    mutating func releaseLease(_ application: String, _ key: String, owner: String) -> Bool {
        guard rows[application]?[key]?.leaseOwner == owner else { return false }
        rows[application]?[key]?.leaseOwner = nil
        rows[application]?[key]?.leaseUntil = nil
        return true
    }

    mutating func issueState(_ application: String, _ state: ConnectState, capacity: Int, now: Date) {
        var mine = (states[application] ?? [:]).filter { $0.value.state.expiresAt > now }
        serial += 1
        mine[state.state] = IssuedState(state: state, serial: serial, consumed: false)
        for oldest in mine.values.sorted(by: { $0.serial < $1.serial }).prefix(max(0, mine.count - capacity)) {
            mine[oldest.state.state] = nil
        }
        states[application] = mine
    }

    mutating func consumeState(_ application: String, _ state: String, now: Date) -> StateClaim {
        guard let issued = states[application]?[state] else { return .unknown }
        if issued.consumed { return .reused }
        if issued.state.expiresAt <= now { return .expired }
        states[application]?[state]?.consumed = true
        return .valid(issued.state)
    }

    private mutating func write(
        _ application: String, _ token: StoredToken, lastRefreshedAt: Date?, options: String?
    ) -> StoredToken {
        var written = token
        written.generation = (rows[application]?[token.key]?.token.generation ?? 0) + 1
        written.lastRefreshedAt = lastRefreshedAt
        written.needsReauth = false
        written.connectOptions = options
        rows[application, default: [:]][token.key] = Row(token: written)
        return written
    }

    private mutating func logChange(_ application: String, _ key: String, _ kind: ChangeKind, _ origin: String) {
        let sequence = latestChange + 1
        log.append((application, StoreChange(sequence: sequence, key: key, kind: kind, origin: origin)))
    }
}
