#if !canImport(CCrypto) && canImport(CryptoKit)
    import CryptoKit
    import Darwin

    /// The primitives of `Primitives+OpenSSL.swift`, from CryptoKit on Apple platforms.
    enum Primitives {
        static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) throws(SealingError) {
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            arc4random_buf(base, buffer.count)
        }

        static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
            if let base = buffer.baseAddress { _ = memset_s(base, buffer.count, 0, buffer.count) }
        }

        static func constantTimeEqual(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
            guard first.count == second.count else { return false }
            var difference: UInt8 = 0
            for index in 0..<first.count { difference |= first[index] ^ second[index] }
            return difference == 0
        }

        static func sealGCM(
            key: UnsafeRawBufferPointer, nonce: [UInt8], plaintext: [UInt8], associatedData: [UInt8]
        ) throws(SealingError) -> (ciphertext: [UInt8], tag: [UInt8]) {
            do {
                let box = try AES.GCM.seal(
                    plaintext, using: SymmetricKey(data: key), nonce: try AES.GCM.Nonce(data: nonce),
                    authenticating: associatedData)
                return (Array(box.ciphertext), Array(box.tag))
            } catch {
                throw .library("AES-256-GCM encryption")
            }
        }

        static func openGCM(
            key: UnsafeRawBufferPointer, nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8], associatedData: [UInt8]
        ) throws(SealingError) -> [UInt8] {
            let box: AES.GCM.SealedBox
            do {
                box = try AES.GCM.SealedBox(nonce: try AES.GCM.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
            } catch {
                throw .malformed("a sealed value CryptoKit cannot read")
            }
            do {
                return Array(try AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: associatedData))
            } catch {
                throw .authenticationFailed
            }
        }

        static func hkdfSHA256(
            inputKeyMaterial: UnsafeRawBufferPointer, salt: [UInt8], info: [UInt8], outputCount: Int
        ) throws(SealingError) -> SecretBytes {
            let derived = CryptoKit.HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: inputKeyMaterial), salt: salt, info: info,
                outputByteCount: outputCount)
            return derived.withUnsafeBytes { SecretBytes($0) }
        }
    }
#endif
