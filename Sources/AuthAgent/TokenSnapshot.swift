import Foundation
import JSONRPC
import Synchronization
import TokenStore

/// The tokens a `getToken` may be answered with on the spot, without a hop to the `TokenManager` actor:
/// per key, the token summary already encoded, with only `expiresIn` left to fill in.
///
/// The actor stays the owner of every row; it publishes a key here only while the key has nothing pending
/// (no refresh running, no unsaved tokens, not marked for re-authorization), and only rows it read from or
/// committed to the store, so what is offered here is always durably stored. Anything this cannot answer
/// (an unknown key, a token too close to its expiry) goes to the actor as before.
final class TokenSnapshot: Sendable {
    private struct Entry {
        var expiresAt: Date
        /// The summary's JSON, cut where the `expiresIn` number goes.
        var json: [UInt8]
        var split: Int
    }

    private let entries = Mutex<[String: Entry]>([:])

    func publish(_ token: StoredToken) {
        var json: [UInt8] = []
        json.reserveCapacity(160 + token.key.utf8.count + token.accessToken.utf8.count)
        json.append(contentsOf: #"{"key":"#.utf8)
        JSONText.append(token.key, to: &json)
        json.append(contentsOf: #","accessToken":"#.utf8)
        JSONText.append(token.accessToken, to: &json)
        json.append(contentsOf: #","tokenType":"Bearer","expiresAt":"#.utf8)
        JSONText.append(RFC3339.string(token.expiresAt), to: &json)
        json.append(contentsOf: #","expiresIn":"#.utf8)
        let split = json.count
        if let refreshExpiresAt = token.refreshExpiresAt {
            json.append(contentsOf: #","refreshExpiresAt":"#.utf8)
            JSONText.append(RFC3339.string(refreshExpiresAt), to: &json)
        }
        json.append(UInt8(ascii: "}"))
        // Copied to a buffer of its exact size: with 100,000 keys the slack of a grown array is megabytes.
        let entry = Entry(expiresAt: token.expiresAt, json: Array(json[...]), split: split)
        entries.withLock { $0[token.key] = entry }
    }

    func withdraw(_ key: String) {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    /// The summary of `key`'s token (as `TokenSummary` encodes it) if it stays valid more than `margin`
    /// seconds after `now`.
    func summary(for key: String, validFor margin: TimeInterval, now: Date) -> [UInt8]? {
        guard let entry = entries.withLock({ $0[key] }) else { return nil }
        let remaining = entry.expiresAt.timeIntervalSince(now)
        guard remaining > margin else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(entry.json.count + 12)
        out.append(contentsOf: entry.json[..<entry.split])
        JSONText.append(Int64(remaining.rounded(.down)), to: &out)
        out.append(contentsOf: entry.json[entry.split...])
        return out
    }

    var count: Int { entries.withLock { $0.count } }
}
