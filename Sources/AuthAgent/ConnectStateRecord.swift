import Foundation
import TokenStore

/// What a Connect `state` carries in the store (`ConnectState.options`), so that the agent taking the redirect,
/// whichever agent on the store it is, exchanges the code with the redirect URI the Connect URL used.
struct ConnectStateRecord: Codable, Equatable {
    var redirectURI: String?

    /// The application's unexpired states the store keeps at most; past that the oldest are dropped first.
    static let capacity = 10_000

    /// An unguessable state from the system's CSPRNG (128 bits, hex).
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max, using: &generator)) }.joined()
    }

    /// The text kept in `ConnectState.options`.
    var text: String { String(decoding: (try? JSONEncoder().encode(self)) ?? Data("{}".utf8), as: UTF8.self) }

    init(redirectURI: String?) { self.redirectURI = redirectURI }

    /// The record a state's `options` text holds; an empty one for a state issued without.
    init(text: String?) {
        self = text.flatMap { try? JSONDecoder().decode(Self.self, from: Data($0.utf8)) } ?? Self(redirectURI: nil)
    }
}
