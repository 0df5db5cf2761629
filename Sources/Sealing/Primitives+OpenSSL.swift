#if canImport(CCrypto)
    import CCrypto

    /// The few primitives sealing needs, from OpenSSL's libcrypto (Linux). `Primitives+CryptoKit.swift` is the
    /// same on Apple platforms.
    enum Primitives {
        static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) throws(SealingError) {
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            guard RAND_bytes(base.assumingMemoryBound(to: UInt8.self), Int32(buffer.count)) == 1 else {
                throw .library("RAND_bytes")
            }
        }

        static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
            if let base = buffer.baseAddress { OPENSSL_cleanse(base, buffer.count) }
        }

        /// Equal lengths assumed by the caller; the time depends only on the length.
        static func constantTimeEqual(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
            guard first.count == second.count else { return false }
            guard let a = first.baseAddress, let b = second.baseAddress else { return true }
            return CRYPTO_memcmp(a, b, first.count) == 0
        }

        /// AES-256-GCM encryption: the ciphertext (as long as the plaintext) and the 16-byte tag.
        static func sealGCM(
            key: UnsafeRawBufferPointer, nonce: [UInt8], plaintext: [UInt8], associatedData: [UInt8]
        ) throws(SealingError) -> (ciphertext: [UInt8], tag: [UInt8]) {
            let context = try GCMContext()
            var ciphertext = [UInt8](repeating: 0, count: plaintext.count)
            var tag = [UInt8](repeating: 0, count: AESGCM.tagCount)
            var finalBlock = [UInt8](repeating: 0, count: 16)
            var written: Int32 = 0
            let ok =
                EVP_EncryptInit_ex(context.pointer, EVP_aes_256_gcm(), nil, nil, nil) == 1
                && ccrypto_gcm_set_iv_length(context.pointer, Int32(nonce.count)) == 1
                && EVP_EncryptInit_ex(context.pointer, nil, nil, key.bytes, nonce) == 1
                && (associatedData.isEmpty
                    || EVP_EncryptUpdate(context.pointer, nil, &written, associatedData, Int32(associatedData.count))
                        == 1)
                && (plaintext.isEmpty
                    || EVP_EncryptUpdate(context.pointer, &ciphertext, &written, plaintext, Int32(plaintext.count))
                        == 1)
                // GCM writes everything in Update; Final only computes the tag.
                && EVP_EncryptFinal_ex(context.pointer, &finalBlock, &written) == 1
                && ccrypto_gcm_get_tag(context.pointer, &tag, Int32(tag.count)) == 1
            guard ok else { throw .library("AES-256-GCM encryption") }
            return (ciphertext, tag)
        }

        /// AES-256-GCM decryption; throws `.authenticationFailed` when the tag does not match (OpenSSL compares
        /// it in constant time) and returns no plaintext then.
        static func openGCM(
            key: UnsafeRawBufferPointer, nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8], associatedData: [UInt8]
        ) throws(SealingError) -> [UInt8] {
            let context = try GCMContext()
            var plaintext = [UInt8](repeating: 0, count: ciphertext.count)
            var written: Int32 = 0
            let ready =
                EVP_DecryptInit_ex(context.pointer, EVP_aes_256_gcm(), nil, nil, nil) == 1
                && ccrypto_gcm_set_iv_length(context.pointer, Int32(nonce.count)) == 1
                && EVP_DecryptInit_ex(context.pointer, nil, nil, key.bytes, nonce) == 1
                && (associatedData.isEmpty
                    || EVP_DecryptUpdate(context.pointer, nil, &written, associatedData, Int32(associatedData.count))
                        == 1)
                && (ciphertext.isEmpty
                    || EVP_DecryptUpdate(context.pointer, &plaintext, &written, ciphertext, Int32(ciphertext.count))
                        == 1)
                && ccrypto_gcm_set_tag(context.pointer, tag, Int32(tag.count)) == 1
            guard ready else { throw .library("AES-256-GCM decryption") }
            var (finalBlock, last) = ([UInt8](repeating: 0, count: 16), Int32(0))
            guard EVP_DecryptFinal_ex(context.pointer, &finalBlock, &last) == 1 else {
                plaintext.withUnsafeMutableBytes { wipe($0) }
                throw .authenticationFailed
            }
            return plaintext
        }

        static func hkdfSHA256(
            inputKeyMaterial: UnsafeRawBufferPointer, salt: [UInt8], info: [UInt8], outputCount: Int
        ) throws(SealingError) -> SecretBytes {
            var output = [UInt8](repeating: 0, count: outputCount)
            defer { output.withUnsafeMutableBytes { wipe($0) } }
            guard
                ccrypto_hkdf_sha256(
                    inputKeyMaterial.bytes, inputKeyMaterial.count, salt, salt.count, info, info.count, &output,
                    outputCount) == 1
            else { throw .library("HKDF-SHA256") }
            return SecretBytes(output)
        }
    }

    /// One EVP cipher context, freed (and cleared by OpenSSL) when released.
    private final class GCMContext {
        let pointer: OpaquePointer

        init() throws(SealingError) {
            guard let pointer = EVP_CIPHER_CTX_new() else { throw .library("EVP_CIPHER_CTX_new") }
            self.pointer = pointer
        }

        deinit { EVP_CIPHER_CTX_free(pointer) }
    }

    extension UnsafeRawBufferPointer {
        fileprivate var bytes: UnsafePointer<UInt8>? { baseAddress?.assumingMemoryBound(to: UInt8.self) }
    }
#endif
