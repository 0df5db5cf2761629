/// Why sealing or opening failed. Never carries key material or plaintext.
package enum SealingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The ciphertext, its nonce, its tag or its associated data is not what was sealed, or the key is another:
    /// GCM's tag check failed, and nothing was decrypted.
    case authenticationFailed
    /// A key, nonce or tag of the wrong size, or a sealed value too short to hold a nonce and a tag.
    case malformed(String)
    /// The crypto library refused an operation it should not (out of memory, a broken installation).
    case library(String)

    package var description: String {
        switch self {
        case .authenticationFailed: "the sealed value does not open with this key in this place"
        case .malformed(let why): "malformed sealed value or key: \(why)"
        case .library(let what): "the crypto library failed: \(what)"
        }
    }
}
