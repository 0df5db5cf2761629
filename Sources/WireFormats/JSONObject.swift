/// The members of a JSON object, in the order written (Foundation's JSON types and `Dictionary` lose it).
///
/// Reads like a dictionary (`members["key"]`, get and set, `keys`, `mapValues`) and is a collection of
/// `(key, value)` pairs like one. Equality ignores order: two objects are equal when they have the same members.
package struct JSONObject: Sendable {
    package typealias Member = (key: String, value: JSONValue)

    private var members: [Member]

    package init() { members = [] }

    /// The value of member `key` (the first one, if a key is repeated), or nil. Setting replaces the first
    /// member of that name in place, or appends one; setting nil removes every member of that name.
    package subscript(key: String) -> JSONValue? {
        get { members.first { $0.key == key }?.value }
        set {
            guard let newValue else {
                members.removeAll { $0.key == key }
                return
            }
            if let index = members.firstIndex(where: { $0.key == key }) {
                members[index].value = newValue
            } else {
                members.append((key, newValue))
            }
        }
    }

    /// The member names, in order.
    package var keys: [String] { members.map(\.key) }

    /// Removes member `key` and returns its value (the first one's, if a key is repeated).
    @discardableResult
    package mutating func removeValue(forKey key: String) -> JSONValue? {
        let value = self[key]
        self[key] = nil
        return value
    }

    /// The same names in the same order, each value transformed.
    package func mapValues(_ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        JSONObject(try members.map { ($0.key, try transform($0.value)) })
    }
}

extension JSONObject: RandomAccessCollection, RangeReplaceableCollection {
    package var startIndex: Int { members.startIndex }
    package var endIndex: Int { members.endIndex }
    package subscript(position: Int) -> Member { members[position] }

    package mutating func replaceSubrange(_ range: Range<Int>, with newMembers: some Collection<Member>) {
        members.replaceSubrange(range, with: newMembers)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// Members in the order written.
    package init(dictionaryLiteral elements: (String, JSONValue)...) {
        members = elements.map { (key: $0.0, value: $0.1) }
    }
}

extension JSONObject: Hashable {
    /// The same members, in any order: sorted by name (stably, so repeated names keep their order), then
    /// compared one by one.
    package static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.members.elementsEqual(rhs.members, by: { $0.key == $1.key && $0.value == $1.value }) { return true }
        return lhs.sortedByKey.elementsEqual(rhs.sortedByKey, by: { $0.key == $1.key && $0.value == $1.value })
    }

    /// Independent of order: the members' own hashes are summed.
    package func hash(into hasher: inout Hasher) {
        var sum = 0
        for member in members {
            var memberHasher = Hasher()
            memberHasher.combine(member.key)
            memberHasher.combine(member.value)
            sum &+= memberHasher.finalize()
        }
        hasher.combine(count)
        hasher.combine(sum)
    }

    private var sortedByKey: [Member] {
        members.enumerated().sorted { ($0.element.key, $0.offset) < ($1.element.key, $1.offset) }.map(\.element)
    }
}

extension JSONObject: Codable {
    private struct MemberKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// The members in the decoder's order (`JSONDecoder` does not keep the text's).
    package init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: MemberKey.self)
        members = try container.allKeys.map { ($0.stringValue, try container.decode(JSONValue.self, forKey: $0)) }
    }

    package func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: MemberKey.self)
        for member in members { try container.encode(member.value, forKey: MemberKey(stringValue: member.key)) }
    }
}
