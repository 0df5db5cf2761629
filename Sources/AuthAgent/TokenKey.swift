/// A key (or a Connect `state`) as the maps of the agent must compare it: byte for byte, as the store does.
///
/// Swift's `String ==` is canonical equivalence: "café" in NFC and in NFD are equal and hash alike, so a map
/// keyed by `String` merges two keys that SQLite (BINARY collation) keeps apart, and one user would get the
/// other's token. Every in-memory map of keys is keyed by this instead.
struct TokenKey: Hashable, Sendable, CustomStringConvertible {
    let string: String

    init(_ string: String) { self.string = string }

    static func == (lhs: TokenKey, rhs: TokenKey) -> Bool { lhs.string.utf8.elementsEqual(rhs.string.utf8) }

    func hash(into hasher: inout Hasher) {
        var string = string
        string.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    var description: String { string }
}
