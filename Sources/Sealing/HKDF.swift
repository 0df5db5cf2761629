/// HKDF with SHA-256 (RFC 5869): turns a secret that is not itself a key (the application's client secret) and a
/// random per-store salt into key material.
package enum HKDF {
    package static func sha256(
        inputKeyMaterial: SecretBytes, salt: [UInt8], info: [UInt8], outputCount: Int
    ) throws(SealingError) -> SecretBytes {
        guard (1...255 * 32).contains(outputCount) else { throw .malformed("an HKDF output of \(outputCount) bytes") }
        return try inputKeyMaterial.withUnsafeBytes { ikm throws(SealingError) in
            try Primitives.hkdfSHA256(inputKeyMaterial: ikm, salt: salt, info: info, outputCount: outputCount)
        }
    }
}
