import AgentTestSupport
import Sealing
import Testing

@testable import TokenStore

/// A sealed token opens only in the place it was sealed for, under the key of the secret and store it was
/// sealed with; the fingerprint tells secrets apart without revealing the key.
@Suite struct TokenSealerTests {
    static let salt: [UInt8] = Array(repeating: 0x5a, count: 32)

    func sealer(
        secret: String = "client-secret-1", store: String = "store-1", application: String = "app-1",
        salt: [UInt8] = salt
    ) throws -> TokenSealer {
        try TokenSealer(
            secret: .clientSecret(SecretBytes(Array(secret.utf8))), storeID: store, salt: salt,
            application: application)
    }

    @Test func aValueOpensOnlyInItsOwnPlace() throws {
        var generator = SeededGenerator(seed: 0x5EA1ED)
        let own = try sealer()
        let others: [(String, TokenSealer)] = [
            ("another secret", try sealer(secret: "client-secret-2")),
            ("another store", try sealer(store: "store-2")),
            ("another application", try sealer(application: "app-2")),
            ("another salt", try sealer(salt: Array(repeating: 0x5b, count: 32))),
        ]
        for round in 0..<50 {
            let value = String(
                (0..<Int.random(in: 1...120, using: &generator)).map { _ in
                    Character(Unicode.Scalar(UInt8.random(in: 0x21...0x7e, using: &generator)))
                })
            let key = "user-\(round)"
            let column = TokenSealer.Column.allCases.randomElement(using: &generator)!
            let generation = Int64.random(in: 1...1_000, using: &generator)
            let sealed = try own.seal(value, key: key, column: column, generation: generation)
            #expect(!sealed.containsSubsequence(Array(value.utf8.prefix(16))))
            #expect(try own.open(sealed, key: key, column: column, generation: generation) == value)
            let otherColumn: TokenSealer.Column = column == .accessToken ? .refreshToken : .accessToken
            let misplaced: [() throws -> String] =
                [
                    { try own.open(sealed, key: key + "x", column: column, generation: generation) },
                    { try own.open(sealed, key: key, column: otherColumn, generation: generation) },
                    { try own.open(sealed, key: key, column: column, generation: generation + 1) },
                ]
                + others.map { _, other in { try other.open(sealed, key: key, column: column, generation: generation) }
                }
            for attempt in misplaced {
                #expect(throws: StoreError.self) { try attempt() }
                do { _ = try attempt() } catch let error as StoreError {
                    #expect(error.kind == .sealing && error.message.contains(key) && !error.message.contains(value))
                }
            }
        }
    }

    @Test func fingerprintsNameTheSecretNotTheKey() throws {
        let first = try sealer(), again = try sealer(), second = try sealer(secret: "client-secret-2")
        #expect(first.fingerprint == again.fingerprint && first.fingerprint != second.fingerprint)
        #expect(first.fingerprint.count == 32 && first.fingerprint.allSatisfy(\.isHexDigit))
        #expect(first.fingerprint != (try sealer(application: "app-2")).fingerprint)
        #expect(first.source == "client-secret")
    }

    @Test func anUnknownFormatIsRefusedNotGuessed() throws {
        let own = try sealer()
        var sealed = try own.seal("token", key: "k", column: .accessToken, generation: 1)
        sealed[0] = 2
        #expect(throws: StoreError.self) { try own.open(sealed, key: "k", column: .accessToken, generation: 1) }
        #expect(throws: StoreError.self) { try own.open([], key: "k", column: .accessToken, generation: 1) }
    }
}

extension Array where Element == UInt8 {
    fileprivate func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        return (0...(count - needle.count)).contains { Array(self[$0..<$0 + needle.count]) == needle }
    }
}
