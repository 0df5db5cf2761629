import Foundation

/// What a change did to a key. Stored as its raw value.
package enum ChangeKind: String, Sendable, Equatable, CaseIterable {
    /// New tokens stored by a client (`storeToken`).
    case stored
    /// New tokens from a Connect code exchange (`exchangeCode`, `handleRedirect`).
    case exchanged
    /// Tokens rotated by a refresh.
    case refreshed
    /// The key was deleted (`forgetToken`).
    case forgotten
    /// Smartcar refused the refresh token: the key needs Connect again.
    case reauthRequired
}

/// One entry of a store's change log: a row of `application` changed. Never holds a token value.
package struct StoreChange: Sendable, Equatable {
    /// Increases with every change of any application on the store; never reused.
    package var sequence: Int64
    package var key: String
    package var kind: ChangeKind
    /// The `origin` of the store that made the change (an agent id).
    package var origin: String

    package init(sequence: Int64, key: String, kind: ChangeKind, origin: String) {
        self.sequence = sequence
        self.key = key
        self.kind = kind
        self.origin = origin
    }
}

/// What `TokenStore.changes(after:limit:)` found.
package enum ChangeBatch: Sendable, Equatable {
    /// The changes after the sequence asked for, oldest first (empty: none yet).
    case changes([StoreChange])
    /// Entries after the sequence asked for were pruned: reload everything, then follow from `latest`.
    case fellBehind(latest: Int64)
}

/// One agent's reader of its application's changes, keeping its own position. `poll()` is cheap when nothing
/// changed (no table scan: SQLite checks `PRAGMA data_version` on the follower's own connection), so a
/// background task can call it every few tens of milliseconds. Calls must not overlap.
package protocol ChangeFollower: Sendable {
    /// The changes since the last poll (in batches of at most a few hundred; poll again while non-empty), or
    /// `.fellBehind` (the follower then continues after the newest change).
    func poll() async throws(StoreError) -> ChangeBatch
    /// Returns once a change may be waiting (a PostgreSQL notification arrived), or after `upTo`: the pause
    /// between polls. Not cancellable.
    func waitForChange(upTo: Duration) async
    /// Releases the follower's resources (its connection). Later polls throw `.closed`.
    func close() async
}

extension ChangeFollower {
    /// Followers told of nothing (SQLite, memory) just wait.
    package func waitForChange(upTo limit: Duration) async { try? await Task.sleep(for: limit) }
}

/// How many change-log entries a store keeps (all applications together) unless told otherwise: a follower
/// more than this many changes behind is told to reload everything.
package let defaultChangeLogCapacity = 10_000
