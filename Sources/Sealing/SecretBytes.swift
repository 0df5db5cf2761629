/// Key material in memory of its own, wiped when the value is released: Swift arrays may be copied and freed
/// without being cleared, so a key lives here and is only lent out for the length of a call.
package final class SecretBytes: Sendable {
    // Written once in `init`, read only through `withUnsafeBytes`, wiped in `deinit` when no reference remains:
    // no mutation is shared between threads, so the pointer may be sent.
    nonisolated(unsafe) private let storage: UnsafeMutableRawBufferPointer

    /// Copies `bytes` (the caller's own copy is its to clear).
    package init(_ bytes: some Collection<UInt8>) {
        storage = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
        _ = UnsafeMutableRawBufferPointer(rebasing: storage[0..<bytes.count]).initializeMemory(
            as: UInt8.self, from: bytes)
        count = bytes.count
    }

    /// `count` random bytes from the operating system's generator.
    package init(randomCount: Int) throws(SealingError) {
        storage = .allocate(byteCount: max(randomCount, 1), alignment: 16)
        count = randomCount
        try Primitives.fillRandom(UnsafeMutableRawBufferPointer(rebasing: storage[0..<randomCount]))
    }

    package let count: Int

    deinit {
        Primitives.wipe(storage)
        storage.deallocate()
    }

    /// Lends the bytes for the length of `body`; do not keep the pointer.
    package func withUnsafeBytes<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// Whether both hold the same bytes, in time that depends only on the length.
    package func constantTimeEquals(_ other: SecretBytes) -> Bool {
        guard count == other.count else { return false }
        return withUnsafeBytes { mine in
            other.withUnsafeBytes { theirs in Primitives.constantTimeEqual(mine, theirs) }
        }
    }
}

extension Array where Element == UInt8 {
    /// Overwrites the bytes with zeros where they are (a copy made earlier is not reached: keep secrets in
    /// `SecretBytes`, and wipe only transient buffers with this).
    package mutating func wipe() {
        withUnsafeMutableBytes { Primitives.wipe($0) }
    }
}
