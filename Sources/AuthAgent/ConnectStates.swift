import AgentSupport
import Foundation
import Synchronization

/// The Connect `state` values this agent handed out, so `handleRedirect` can refuse a redirect it did not
/// start (CSRF). Each state is single-use and expires; it remembers the redirect URI the Connect URL used
/// (the code exchange must send the same one) and the key the tokens are meant for, if any.
final class ConnectStates: Sendable {
    struct Issued: Sendable, Equatable {
        var redirectURI: String?
        var key: String?
        var expiresAt: Date
    }

    enum Claim: Equatable {
        case valid(Issued)
        case unknown, reused, expired
    }

    private struct Registry {
        var issued: [String: Issued] = [:]
        /// Claimed or expired states, remembered until they would have expired, so a replay is named as such.
        var spent: [String: Date] = [:]
        var order: [String] = []
    }

    private let registry = Mutex(Registry())
    private let clock: any WallClock
    private let lifetime: TimeInterval
    private let capacity: Int

    init(clock: any WallClock, lifetime: TimeInterval, capacity: Int = 10_000) {
        self.clock = clock
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// An unguessable state from the system's CSPRNG (128 bits, hex).
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max, using: &generator)) }.joined()
    }

    /// Remembers `state` until it is claimed or expires.
    func remember(_ state: String, redirectURI: String?, key: String?) {
        let now = clock.now()
        registry.withLock { registry in
            registry.issued[state] = Issued(
                redirectURI: redirectURI, key: key, expiresAt: now.addingTimeInterval(lifetime))
            registry.spent[state] = nil
            registry.order.append(state)
            Self.prune(&registry, now: now, capacity: capacity)
        }
    }

    /// Claims `state` once: a second claim, an unknown or an expired state is refused.
    func claim(_ state: String) -> Claim {
        let now = clock.now()
        return registry.withLock { registry in
            if let issued = registry.issued.removeValue(forKey: state) {
                registry.spent[state] = issued.expiresAt
                return issued.expiresAt > now ? .valid(issued) : .expired
            }
            if let until = registry.spent[state] { return until > now ? .reused : .expired }
            return .unknown
        }
    }

    /// Drops states past their expiry (keeping a short memory of them) and bounds the registry's size.
    private static func prune(_ registry: inout Registry, now: Date, capacity: Int) {
        guard registry.order.count > capacity else { return }
        var kept: [String] = []
        for state in registry.order {
            if let issued = registry.issued[state], issued.expiresAt > now {
                kept.append(state)
            } else {
                registry.issued[state] = nil
            }
        }
        if kept.count > capacity {
            for state in kept.prefix(kept.count - capacity) { registry.issued[state] = nil }
            kept.removeFirst(kept.count - capacity)
        }
        registry.order = kept
        registry.spent = registry.spent.filter { $0.value > now }
    }
}
