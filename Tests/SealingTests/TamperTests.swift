import AgentTestSupport
import Testing

@testable import Sealing

/// Whatever is changed about a sealed value (one bit of its nonce, ciphertext or tag, its associated data, its
/// length, the key), it does not open, and the error says only that.
@Suite struct TamperTests {
    @Test func everySingleBitFlipAndEveryOtherPlaceIsRefused() throws {
        var generator = SeededGenerator(seed: 0x5EA1)
        for round in 0..<40 {
            let key = try SecretBytes(randomCount: AESGCM.keyCount)
            let plaintext = (0..<Int.random(in: 0...80, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            let place = Array("store|app|user-\(round)|refresh_token|\(round)".utf8)
            let sealed = try AESGCM.seal(plaintext, key: key, associatedData: place)
            #expect(sealed.count == AESGCM.nonceCount + plaintext.count + AESGCM.tagCount)
            #expect(try AESGCM.open(sealed, key: key, associatedData: place) == plaintext)
            for bit in 0..<sealed.count * 8 {
                var flipped = sealed
                flipped[bit / 8] ^= 1 << (bit % 8)
                #expect(throws: SealingError.authenticationFailed) {
                    try AESGCM.open(flipped, key: key, associatedData: place)
                }
            }
            var otherPlace = place
            otherPlace[Int.random(in: 0..<otherPlace.count, using: &generator)] ^= 0x01
            #expect(throws: SealingError.authenticationFailed) {
                try AESGCM.open(sealed, key: key, associatedData: otherPlace)
            }
            #expect(throws: SealingError.authenticationFailed) {
                try AESGCM.open(sealed, key: try SecretBytes(randomCount: AESGCM.keyCount), associatedData: place)
            }
            #expect(throws: SealingError.self) {
                try AESGCM.open(Array(sealed.dropLast()), key: key, associatedData: place)
            }
        }
    }

    @Test func freshNoncesMakeEverySealDifferent() throws {
        let key = try SecretBytes(randomCount: AESGCM.keyCount)
        let sealed = try (0..<200).map { _ in try AESGCM.seal(Array("same token".utf8), key: key, associatedData: []) }
        #expect(Set(sealed.map { $0.prefix(AESGCM.nonceCount) }).count == sealed.count)
    }

    @Test func wrongSizesAreMalformedNotCrashes() throws {
        #expect(throws: SealingError.malformed("a key of 16 bytes, not 32")) {
            try AESGCM.seal([1], key: SecretBytes(Array(repeating: 0, count: 16)), associatedData: [])
        }
        let key = try SecretBytes(randomCount: AESGCM.keyCount)
        #expect(throws: SealingError.self) {
            try AESGCM.open(Array(repeating: 0, count: 27), key: key, associatedData: [])
        }
        #expect(throws: SealingError.self) {
            try HKDF.sha256(inputKeyMaterial: key, salt: [], info: [], outputCount: 255 * 32 + 1)
        }
    }

    @Test func secretBytesCompareInFullAndByLength() throws {
        let first = SecretBytes(Array(repeating: 7, count: 32))
        #expect(first.constantTimeEquals(SecretBytes(Array(repeating: 7, count: 32))))
        #expect(!first.constantTimeEquals(SecretBytes(Array(repeating: 7, count: 31) + [8])))
        #expect(!first.constantTimeEquals(SecretBytes(Array(repeating: 7, count: 31))))
    }
}
