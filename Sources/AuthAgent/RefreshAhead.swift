import Foundation
import TokenStore

/// When a key's refresh starts ahead of need: a caller whose token still meets its `minValidity` but would not
/// meet it `window` seconds later gets the token at once, and the key is refreshed in the background, so no
/// caller waits for Smartcar. Only keys callers ask for are refreshed early.
///
/// Each key's window is `seconds` scaled by a factor between 2/3 and 1 drawn from the key's bytes (so a fleet
/// stored at once does not refresh in one burst, and every agent on a store picks the same window for a key),
/// and capped by the token's lifetime: at most an eighth of it, and below 15 minutes of lifetime at
/// lifetime² / 2 h (0.5 s of a 60-second token), so a short-lived token is refreshed about once per lifetime.
struct RefreshAhead: Sendable {
    /// The window before jitter and cap; 0 turns refresh-ahead off.
    let seconds: TimeInterval

    var isEnabled: Bool { seconds > 0 }

    /// Smartcar's access tokens live 2 hours: the lifetime assumed for tokens a client stored, whose issue time
    /// the agent does not know.
    static let assumedLifetime: TimeInterval = 7200

    /// The seconds before a caller's `minValidity` stops being met at which `token` starts its early refresh.
    func window(for token: StoredToken) -> TimeInterval {
        guard isEnabled else { return 0 }
        let issued = token.lastRefreshedAt.map { token.expiresAt.timeIntervalSince($0) } ?? 0
        let lifetime = issued > 0 ? issued : Self.assumedLifetime
        let cap = min(lifetime / 8, lifetime * lifetime / Self.assumedLifetime)
        return min(seconds, cap) * Self.jitterFactor(token.key)
    }

    /// A factor in 2/3...1 fixed by the key's bytes (FNV-1a), the same in every agent.
    static func jitterFactor(_ key: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return 2.0 / 3.0 + Double(hash % 1000) / 999 / 3
    }
}
