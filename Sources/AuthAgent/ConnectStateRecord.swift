import Foundation
import SmartcarOAuth
import TokenStore

/// The Connect options a URL was built with, as kept in the store: in its `state` (`ConnectState.options`), so
/// that whichever agent on the store takes the redirect exchanges the code with the redirect URI the URL used;
/// then with the grant (`StoredToken.connectOptions`), so that a re-authorization URL asks for the same access
/// in the same mode.
enum ConnectStateRecord {
    /// The application's unexpired states the store keeps at most; past that the oldest are dropped first.
    static let capacity = 10_000

    /// An unguessable state from the system's CSPRNG (128 bits, hex).
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max, using: &generator)) }.joined()
    }

    /// The text kept in the store for `options` (without its state, which is single use).
    static func text(_ options: ConnectOptions) -> String {
        var options = options
        options.state = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(options)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The options `text` holds; the defaults for none (a state or grant stored without).
    static func options(_ text: String?) -> ConnectOptions {
        text.flatMap { try? JSONDecoder().decode(ConnectOptions.self, from: Data($0.utf8)) } ?? ConnectOptions()
    }
}
