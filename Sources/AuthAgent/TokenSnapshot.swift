import Foundation
import JSONRPC
import Synchronization
import TokenStore
import WireFormats

/// The tokens a `getToken` may be answered with on the spot, without a hop to the `TokenManager` actor:
/// per key, the parts of its token summary already encoded, with only `expiresIn` left to compute.
///
/// The actor stays the owner of every row; it publishes a key here only while the key has nothing pending
/// (no refresh callers must wait for, no unsaved tokens, not marked for re-authorization), and only rows it read
/// from or committed to the store, so what is offered here is always durably stored. Anything this cannot
/// answer (an unknown key, a token too close to its expiry) goes to the actor as before. A key stays here while
/// its refresh ahead of expiry runs (`RefreshAhead`): its callers keep the current token until the new one is
/// committed and published.
///
/// Other agents on the store change rows behind this one's back: the agent's `StoreChangeWatch` drops each
/// changed key (`invalidate`). A row read before such a drop must not be published after it, so every
/// publication names the `changesSeen` count it was read at and is refused once a change came in since.
final class TokenSnapshot: Sendable {
    private struct Entry {
        var expiresAt: Date
        /// The JSON strings of `accessToken`, `expiresAt` and `refreshExpiresAt` (when there is one), back to
        /// back: the rest of a summary is the same for every key, and with 100,000 keys every byte counts.
        var strings: [UInt8]
        var accessTokenEnd: Int32
        var expiresAtEnd: Int32
        var generation: Int64
        /// The key's `RefreshAhead` window, and whether a caller already entered it (the one early refresh of
        /// this row was asked for).
        var window: TimeInterval
        var aheadAsked = false
    }

    private struct State {
        /// Keyed byte for byte (`TokenKey`), as the store keys its rows.
        var entries: [TokenKey: Entry] = [:]
        /// How many times rows were invalidated by changes followed in the store.
        var changesSeen: UInt64 = 0
    }

    private let state = Mutex(State())
    /// The most seconds `TokenManager.token(for:)` adds to `minValidity` (its rounding allowance and any
    /// jitter): a token is answered from here only when the actor would have answered the same one.
    private let margin: TimeInterval

    init(margin: TimeInterval) { self.margin = margin }

    /// Where the store's changes stand: read it before reading a row that may be published.
    var changesSeen: UInt64 { state.withLock { $0.changesSeen } }

    /// Offers `token` to the hot path, unless a change of any key was followed since `changesSeen` was
    /// `readAt` (nil: the row was just committed by this agent and is current), or a later generation of the
    /// key is here already (a row read before this agent's own refresh committed). `window`: its
    /// `RefreshAhead` window; a row offered again keeps its early refresh asked for.
    func publish(_ token: StoredToken, window: TimeInterval = 0, readAt: UInt64?) {
        var strings: [UInt8] = []
        strings.reserveCapacity(token.accessToken.utf8.count + 64)
        JSONText.append(token.accessToken, to: &strings)
        let accessTokenEnd = Int32(strings.count)
        JSONText.append(RFC3339.string(token.expiresAt), to: &strings)
        let expiresAtEnd = Int32(strings.count)
        if let refreshExpiresAt = token.refreshExpiresAt {
            JSONText.append(RFC3339.string(refreshExpiresAt), to: &strings)
        }
        // Copied to a buffer of its exact size: the slack of a reserved array is megabytes at 100,000 keys.
        var entry = Entry(
            expiresAt: token.expiresAt, strings: Array(strings[...]), accessTokenEnd: accessTokenEnd,
            expiresAtEnd: expiresAtEnd, generation: token.generation, window: window)
        state.withLock { state in
            let id = TokenKey(token.key)
            if let readAt, readAt != state.changesSeen {
                state.entries.removeValue(forKey: id)
                return
            }
            if let present = state.entries[id] {
                if present.generation > token.generation { return }
                if present.generation == token.generation { entry.aheadAsked = present.aheadAsked }
            }
            state.entries[id] = entry
        }
    }

    /// Stops answering `key` here, for this agent's own reasons (a refresh running, tokens unsaved).
    func withdraw(_ key: String) {
        _ = state.withLock { $0.entries.removeValue(forKey: TokenKey(key)) }
    }

    /// Stops answering `key` here because the store says its row changed, and refuses rows read before.
    func invalidate(_ key: String) {
        state.withLock { state in
            state.changesSeen &+= 1
            state.entries.removeValue(forKey: TokenKey(key))
        }
    }

    /// Stops answering every key here (changes may have been missed), and refuses rows read before.
    func invalidateAll() {
        state.withLock { state in
            state.changesSeen &+= 1
            state.entries.removeAll()
        }
    }

    /// The summary of `key`'s token, as `TokenSummary` encodes it, if it stays valid more than `minValidity`
    /// plus the margin after `now`; `refreshAhead` is true for the one caller that first finds the token
    /// inside its early window (it then asks the actor for the key's early refresh).
    func summary(
        for key: String, minValidity: TimeInterval, now: Date
    ) -> (json: [UInt8], refreshAhead: Bool)? {
        let found = state.withLock { state -> (Entry, Bool)? in
            let id = TokenKey(key)
            guard var entry = state.entries[id] else { return nil }
            let remaining = entry.expiresAt.timeIntervalSince(now)
            guard remaining > minValidity + margin else { return nil }
            guard !entry.aheadAsked, remaining <= minValidity + margin + entry.window else { return (entry, false) }
            entry.aheadAsked = true
            state.entries[id] = entry
            return (entry, true)
        }
        guard let (entry, refreshAhead) = found else { return nil }
        let strings = entry.strings
        let accessTokenEnd = Int(entry.accessTokenEnd), expiresAtEnd = Int(entry.expiresAtEnd)
        var out: [UInt8] = []
        out.reserveCapacity(strings.count + key.utf8.count + 120)
        JSONText.append(raw: #"{"key":"#, to: &out)
        JSONText.append(key, to: &out)
        JSONText.append(raw: #","accessToken":"#, to: &out)
        out.append(contentsOf: strings[..<accessTokenEnd])
        JSONText.append(raw: #","tokenType":"Bearer","expiresAt":"#, to: &out)
        out.append(contentsOf: strings[accessTokenEnd..<expiresAtEnd])
        JSONText.append(raw: #","expiresIn":"#, to: &out)
        JSONText.append(ExpiresIn.seconds(until: entry.expiresAt, now: now), to: &out)
        if expiresAtEnd < strings.count {
            JSONText.append(raw: #","refreshExpiresAt":"#, to: &out)
            out.append(contentsOf: strings[expiresAtEnd...])
        }
        out.append(UInt8(ascii: "}"))
        return (out, refreshAhead)
    }
}
