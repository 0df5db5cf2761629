import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing

@testable import TokenStore

/// The scan that ends `Tests/all.sh` (`agent-reliability scan-stores`, issue 15): it must see plaintext tokens
/// wherever a store keeps them, and pass stores holding the same tokens sealed.
@Suite struct StoreScanTests {
    /// Seeded search: a value of each length the scanner takes (short ones go through its prefix index, long ones
    /// through its 16-byte windows) is found at any offset of random bytes, whole or as any 16-byte fragment.
    @Test func theScannerFindsAValueOrAnyFragmentOfItAtAnyOffset() {
        var generator = SeededGenerator(seed: 0x5CA7_0001)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-._~")
        for round in 0..<400 {
            let length = Int.random(in: 6...48, using: &generator)
            let value = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            var scanner = SecretScanner()
            scanner.add("token", value)
            var text = (0..<Int.random(in: 0...300, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            #expect(scanner.scan(text, source: "noise").isEmpty, "round \(round)")
            let start = length > 16 ? Int.random(in: 0...(length - 16), using: &generator) : 0
            let fragment = Array(value.utf8)[start..<(start + min(16, length))]
            let offset = Int.random(in: 0...text.count, using: &generator)
            text.insert(contentsOf: fragment, at: offset)
            let hits = scanner.scan(text, source: "store")
            // A random byte before the fragment may extend it backwards by chance: the hit starts there.
            #expect(hits.count == 1 && (offset - start...offset).contains(hits[0].offset), "round \(round)")
        }
    }

    /// The same tokens in a plaintext store fail the scan, sealed they pass it; the
    /// plaintext store kept as excluded passes with its hits counted; a cluster that left no dump fails it.
    @Test func plaintextStoresFailTheScanSealedOnesPassIt() async throws {
        let folder = try TemporaryFolder("store-scan")
        try TestEvidence.exclude(folder, because: "the store scan's own test: a plaintext store for the scan to find")
        let tokens = SealingConformanceTests.tokens(20, seed: 0x5CA7_0002)
        /// An evidence folder holding open stores (their WAL not yet checkpointed away) with `tokens`.
        func evidence(_ name: String, stores: [(String, StoreSecrets?)]) async throws -> (String, [SQLiteTokenStore]) {
            let path = folder.file(name)
            var opened: [SQLiteTokenStore] = []
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            EvidenceValues.record(tokens.flatMap { [$0.accessToken, $0.refreshToken] }, in: path)
            for (place, secrets) in stores {
                let store = try SQLiteTokenStore.open(
                    .file(path + "/\(place)/tokens.sqlite3"), application: testApplication, sealing: secrets)
                for token in tokens { try await store.save(token) }
                _ = try await store.delete(tokens[3].key)
                opened.append(store)
            }
            return (path, opened)
        }
        let sealing = secrets("store-scan-secret")

        let (plain, plainStores) = try await evidence("plain", stores: [("stores/plain", nil)])
        let plaintext = StoreScan.scan(plain)
        #expect(!plaintext.passed)
        #expect(plaintext.hits.count >= tokens.count)

        let (sealedPath, sealedStores) = try await evidence("sealed", stores: [("stores/sealed", sealing)])
        let sealed = StoreScan.scan(sealedPath)
        #expect(sealed.hits.isEmpty)
        #expect(sealed.passed)
        #expect(sealed.files >= 2 && sealed.values == 2 * tokens.count)

        let (mixed, mixedStores) = try await evidence(
            "mixed", stores: [("stores/sealed", sealing), ("excluded/plain", nil)])
        try Data("on purpose".utf8).write(
            to: URL(fileURLWithPath: mixed + "/excluded/plain/" + TestEvidence.exclusionReason))
        let figures = StoreScan.scan(mixed)
        #expect(figures.passed && figures.hits.isEmpty)
        #expect(figures.excludedHits >= tokens.count && figures.reasons.keys.sorted() == ["on purpose"])

        try FileManager.default.createDirectory(atPath: mixed + "/postgres", withIntermediateDirectories: false)
        #expect(FileManager.default.createFile(atPath: mixed + "/postgres/cluster-1.started", contents: nil))
        #expect(!StoreScan.scan(mixed).passed, "a cluster without its dump")
        for store in plainStores + sealedStores + mixedStores { await store.close() }
    }
}
