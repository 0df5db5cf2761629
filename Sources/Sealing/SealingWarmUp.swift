/// OpenSSL 3 builds its algorithm tables on first use, about 2 ms that an agent answering its first `getToken`
/// from a sealed store would otherwise wait for (the store's key derivation, then opening the token). `run()`
/// makes that first use with throwaway inputs; the agent calls it on a thread of its own at launch, while it
/// parses its options and opens the store, and a real use that comes sooner waits inside OpenSSL's own
/// once-only initialisation for the rest.
package enum SealingWarmUp {
    package static func run() {
        guard
            let key = try? HKDF.sha256(
                inputKeyMaterial: SecretBytes([0]), salt: [0], info: [0], outputCount: AESGCM.keyCount)
        else { return }
        _ = try? AESGCM.seal([0], key: key, associatedData: [])
    }
}
