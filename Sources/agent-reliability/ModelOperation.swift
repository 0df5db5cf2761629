import AgentTestSupport
import FakeSmartcar
import Foundation
import WireFormats

/// One request of the model suite in flight: what was asked of which agent, and what the model needs to
/// judge the answer.
struct ModelOperation {
    enum Kind: String, CaseIterable {
        case storeToken, exchangeCode, handleRedirect, forgetToken, getToken, getTokenForced
    }

    let id: JSONValue
    let slot: Int
    let kind: Kind
    let key: ModelKey
    /// The model's write id (nil for a read).
    let write: Int?
    /// The grant a write installs (the fake's user id of its tokens); nil for a forget or a read.
    let grant: String?
    /// The access token `storeToken` imports.
    let accessToken: String?
    /// Logical time it was sent.
    let sent: Int

    var isWrite: Bool { write != nil }
    var isRead: Bool { kind == .getToken || kind == .getTokenForced }
}

/// The random choices of one operation, drawn from the episode's generator.
enum ModelChoices {
    /// Whichever of the exact-byte keys: two plain keys and `"café"` in NFC and NFD, so operations collide
    /// and canonically equivalent keys meet.
    static let keys: [ModelKey] = ["k1", "k2", "caf\u{E9}", "cafe\u{301}"].map(ModelKey.init)

    /// Weights: reads are the most frequent, so refreshes meet writes.
    static let kinds: [(ModelOperation.Kind, Int)] = [
        (.getToken, 5), (.getTokenForced, 4), (.storeToken, 2), (.exchangeCode, 2), (.handleRedirect, 1),
        (.forgetToken, 1),
    ]

    static func kind(using random: inout SeededGenerator) -> ModelOperation.Kind {
        var pick = Int.random(in: 0..<kinds.map(\.1).reduce(0, +), using: &random)
        for (kind, weight) in kinds {
            if pick < weight { return kind }
            pick -= weight
        }
        return .getToken
    }

    /// An upstream fault for the next token requests: delay (some past the agent's request timeout, so the
    /// answer is lost and the refresh re-sent), drop before or after handling, or hold (reorder).
    static func fault(using random: inout SeededGenerator) -> (Fault, times: Int) {
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<3: (.delay(.milliseconds(Int64.random(in: 20...900, using: &random))), 1)
        case 3: (.delay(.milliseconds(2_600)), 1)
        case 4: (.drop, 1)
        case 5, 6: (.dropAfterHandling, 1)
        default: (.hold, Int.random(in: 1...3, using: &random))
        }
    }

    /// `expiresAt` of an imported token: often already past, so the next `getToken` refreshes it.
    static func expiresAt(using random: inout SeededGenerator) -> String {
        random.chance(0.5)
            ? "2020-01-01T00:00:00Z" : Date().addingTimeInterval(600).formatted(.iso8601)
    }
}
