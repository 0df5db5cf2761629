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

    /// Issued and spent states, each in the order it was added: the oldest are dropped first when the
    /// registry is over its capacity (in states, issued and spent each) or its budget (in bytes, all told).
    private struct Registry {
        var issued: [TokenKey: (issued: Issued, serial: Int)] = [:]
        /// Claimed or expired states, remembered until they would have expired, so a replay is named as such.
        var spent: [TokenKey: (until: Date, serial: Int)] = [:]
        /// Insertion order as (state, serial); an entry whose serial no longer matches its map's is stale.
        var issuedOrder: [(state: String, serial: Int)] = []
        var spentOrder: [(state: String, serial: Int)] = []
        var issuedHead = 0
        var spentHead = 0
        var serial = 0
        /// UTF-8 bytes of every string held (states, redirect URIs, keys).
        var bytes = 0

        static func size(_ state: String, _ issued: Issued) -> Int {
            state.utf8.count + (issued.redirectURI?.utf8.count ?? 0) + (issued.key?.utf8.count ?? 0)
        }

        mutating func nextSerial() -> Int {
            serial += 1
            return serial
        }

        mutating func removeIssued(_ state: String) -> Issued? {
            guard let entry = issued.removeValue(forKey: TokenKey(state)) else { return nil }
            bytes -= Self.size(state, entry.issued)
            return entry.issued
        }

        mutating func removeSpent(_ state: String) {
            if spent.removeValue(forKey: TokenKey(state)) != nil { bytes -= state.utf8.count }
        }

        mutating func addSpent(_ state: String, until: Date) {
            removeSpent(state)
            let serial = nextSerial()
            spent[TokenKey(state)] = (until, serial)
            spentOrder.append((state, serial))
            bytes += state.utf8.count
        }

        /// Drops the oldest spent state (false when there is none).
        mutating func dropOldestSpent() -> Bool {
            while spentHead < spentOrder.count {
                let (state, serial) = spentOrder[spentHead]
                spentHead += 1
                if spent[TokenKey(state)]?.serial == serial {
                    removeSpent(state)
                    return true
                }
            }
            return false
        }

        /// Drops the oldest issued state (false when there is none).
        mutating func dropOldestIssued() -> Bool {
            while issuedHead < issuedOrder.count {
                let (state, serial) = issuedOrder[issuedHead]
                issuedHead += 1
                if issued[TokenKey(state)]?.serial == serial {
                    _ = removeIssued(state)
                    return true
                }
            }
            return false
        }

        /// Forgets the order entries already passed or stale, once they outnumber the live ones.
        mutating func compact() {
            if issuedOrder.count > 2 * issued.count + 64 {
                issuedOrder = issuedOrder[issuedHead...].filter { issued[TokenKey($0.state)]?.serial == $0.serial }
                issuedHead = 0
            }
            if spentOrder.count > 2 * spent.count + 64 {
                spentOrder = spentOrder[spentHead...].filter { spent[TokenKey($0.state)]?.serial == $0.serial }
                spentHead = 0
            }
        }
    }

    private let registry = Mutex(Registry())
    private let clock: any WallClock
    private let lifetime: TimeInterval
    private let capacity: Int
    private let maxBytes: Int

    /// Remembers at most `capacity` issued states and as many spent ones, holding at most `maxBytes` bytes
    /// of strings in all (a state with its redirect URI and key is at most about 5 KiB: `Limits`).
    init(clock: any WallClock, lifetime: TimeInterval, capacity: Int = 10_000, maxBytes: Int = 8 << 20) {
        self.clock = clock
        self.lifetime = lifetime
        self.capacity = capacity
        self.maxBytes = maxBytes
    }

    /// How many states are held (issued, spent) and their bytes: for tests of the bounds.
    var usage: (issued: Int, spent: Int, bytes: Int) {
        registry.withLock { ($0.issued.count, $0.spent.count, $0.bytes) }
    }

    /// An unguessable state from the system's CSPRNG (128 bits, hex).
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max, using: &generator)) }.joined()
    }

    /// Remembers `state` until it is claimed or expires.
    func remember(_ state: String, redirectURI: String?, key: String?) {
        let now = clock.now()
        let issued = Issued(redirectURI: redirectURI, key: key, expiresAt: now.addingTimeInterval(lifetime))
        registry.withLock { registry in
            _ = registry.removeIssued(state)
            registry.removeSpent(state)
            let serial = registry.nextSerial()
            registry.issued[TokenKey(state)] = (issued, serial)
            registry.issuedOrder.append((state, serial))
            registry.bytes += Registry.size(state, issued)
            Self.bound(&registry, capacity: capacity, maxBytes: maxBytes)
        }
    }

    /// Claims `state` once: a second claim, an unknown or an expired state is refused.
    func claim(_ state: String) -> Claim {
        let now = clock.now()
        return registry.withLock { registry in
            if let issued = registry.removeIssued(state) {
                registry.addSpent(state, until: issued.expiresAt)
                Self.bound(&registry, capacity: capacity, maxBytes: maxBytes)
                return issued.expiresAt > now ? .valid(issued) : .expired
            }
            if let until = registry.spent[TokenKey(state)]?.until { return until > now ? .reused : .expired }
            return .unknown
        }
    }

    /// Keeps the registry within its capacity and byte budget, dropping the oldest spent states first (they
    /// only name a replay as such), then the oldest issued ones.
    private static func bound(_ registry: inout Registry, capacity: Int, maxBytes: Int) {
        while registry.spent.count > capacity, registry.dropOldestSpent() {}
        while registry.issued.count > capacity, registry.dropOldestIssued() {}
        while registry.bytes > maxBytes, registry.dropOldestSpent() || registry.dropOldestIssued() {}
        registry.compact()
    }
}
