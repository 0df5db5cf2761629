import Testing

@testable import Sealing

/// The published test vectors: AES-256-GCM from the GCM specification submitted to NIST (the test cases 13–16
/// SP 800-38D's validation builds on), HKDF-SHA256 from RFC 5869 appendix A.
@Suite struct KnownAnswerTests {
    struct GCMVector: Sendable, CustomTestStringConvertible {
        var name: String
        var key, nonce, plaintext, associatedData, ciphertext, tag: String
        var testDescription: String { name }
    }

    static let gcm: [GCMVector] = [
        .init(
            name: "test case 13", key: String(repeating: "00", count: 32), nonce: String(repeating: "00", count: 12),
            plaintext: "", associatedData: "", ciphertext: "", tag: "530f8afbc74536b9a963b4f1c4cb738b"),
        .init(
            name: "test case 14", key: String(repeating: "00", count: 32), nonce: String(repeating: "00", count: 12),
            plaintext: String(repeating: "00", count: 16), associatedData: "",
            ciphertext: "cea7403d4d606b6e074ec5d3baf39d18", tag: "d0d1c8a799996bf0265b98b5d48ab919"),
        .init(
            name: "test case 15", key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            nonce: "cafebabefacedbaddecaf888",
            plaintext:
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
            associatedData: "",
            ciphertext:
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
            tag: "b094dac5d93471bdec1a502270e3cc6c"),
        .init(
            name: "test case 16", key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            nonce: "cafebabefacedbaddecaf888",
            plaintext:
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            associatedData: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            ciphertext:
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            tag: "76fc6ece0f4e1768cddf8853bb2d551b"),
    ]

    @Test(arguments: gcm) func aes256GCMSealsAndOpensTheVector(vector: GCMVector) throws {
        let key = SecretBytes(bytes(vector.key))
        let sealed = try AESGCM.seal(
            bytes(vector.plaintext), key: key, nonce: bytes(vector.nonce), associatedData: bytes(vector.associatedData))
        #expect(sealed == bytes(vector.nonce + vector.ciphertext + vector.tag))
        #expect(
            try AESGCM.open(sealed, key: key, associatedData: bytes(vector.associatedData)) == bytes(vector.plaintext))
    }

    struct HKDFVector: Sendable, CustomTestStringConvertible {
        var name: String
        var inputKeyMaterial, salt, info, output: [UInt8]
        var testDescription: String { name }
    }

    static let hkdf: [HKDFVector] = [
        .init(
            name: "A.1", inputKeyMaterial: Array(repeating: 0x0b, count: 22), salt: bytes("000102030405060708090a0b0c"),
            info: bytes("f0f1f2f3f4f5f6f7f8f9"),
            output: bytes("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")),
        .init(
            name: "A.2", inputKeyMaterial: Array(0x00...0x4f), salt: Array(0x60...0xaf), info: Array(0xb0...0xff),
            output: bytes(
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"
            )),
        .init(
            name: "A.3", inputKeyMaterial: Array(repeating: 0x0b, count: 22), salt: [], info: [],
            output: bytes("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")),
    ]

    @Test(arguments: hkdf) func hkdfSHA256DerivesTheVector(vector: HKDFVector) throws {
        let derived = try HKDF.sha256(
            inputKeyMaterial: SecretBytes(vector.inputKeyMaterial), salt: vector.salt, info: vector.info,
            outputCount: vector.output.count)
        #expect(derived.withUnsafeBytes { Array($0) } == vector.output)
    }
}

/// Hex text to bytes (test vectors only).
func bytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count, by: 2).map {
        UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)!
    }
}
