/// AES-256-GCM with a fresh random 96-bit nonce per value, as the sealed store uses it. A sealed value is one
/// byte string: nonce (12) ‖ ciphertext ‖ tag (16). The associated data is not stored: the opener must name the
/// same place (store, application, key, column, generation) or the value does not open.
package enum AESGCM {
    package static let keyCount = 32
    package static let nonceCount = 12
    package static let tagCount = 16

    /// Seals `plaintext` under `key` with a fresh random nonce.
    package static func seal(
        _ plaintext: [UInt8], key: SecretBytes, associatedData: [UInt8]
    ) throws(SealingError) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: nonceCount)
        try nonce.withUnsafeMutableBytes { buffer in
            Result { () throws(SealingError) in try Primitives.fillRandom(buffer) }
        }
        .get()
        return try seal(plaintext, key: key, nonce: nonce, associatedData: associatedData)
    }

    /// Seals with the given nonce. Only for known-answer tests: reusing a nonce under one key breaks GCM.
    package static func seal(
        _ plaintext: [UInt8], key: SecretBytes, nonce: [UInt8], associatedData: [UInt8]
    ) throws(SealingError) -> [UInt8] {
        try check(key)
        guard nonce.count == nonceCount else { throw .malformed("a nonce of \(nonce.count) bytes") }
        let (ciphertext, tag) = try key.withUnsafeBytes { key throws(SealingError) in
            try Primitives.sealGCM(key: key, nonce: nonce, plaintext: plaintext, associatedData: associatedData)
        }
        return nonce + ciphertext + tag
    }

    /// Opens a value `seal` made; throws `.authenticationFailed` if anything about it or its place differs.
    package static func open(
        _ sealed: [UInt8], key: SecretBytes, associatedData: [UInt8]
    ) throws(SealingError) -> [UInt8] {
        try check(key)
        guard sealed.count >= nonceCount + tagCount else {
            throw .malformed("a sealed value of \(sealed.count) bytes, shorter than a nonce and a tag")
        }
        let nonce = Array(sealed.prefix(nonceCount))
        let tag = Array(sealed.suffix(tagCount))
        let ciphertext = Array(sealed.dropFirst(nonceCount).dropLast(tagCount))
        return try key.withUnsafeBytes { key throws(SealingError) in
            try Primitives.openGCM(
                key: key, nonce: nonce, ciphertext: ciphertext, tag: tag, associatedData: associatedData)
        }
    }

    private static func check(_ key: SecretBytes) throws(SealingError) {
        guard key.count == keyCount else { throw .malformed("a key of \(key.count) bytes, not \(keyCount)") }
    }
}
