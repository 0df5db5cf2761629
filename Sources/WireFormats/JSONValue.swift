/// Any JSON value: message envelopes, free-form params and error `data`, transcripts, the fake's bodies.
///
/// Objects keep their members in the order written (see `JSONObject`), so a transcript reads, diffs and
/// prints back as its author wrote it. Equality is semantic: members compare as a set, and numbers by value
/// (`1 == 1.0`).
package enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// An object from a dictionary, members sorted by key (a dictionary has no order of its own to keep).
    /// Disfavoured, so that `.object(["b": 1, "a": 2])` stays a `JSONObject` literal, in the order written.
    @_disfavoredOverload
    package static func object(_ dictionary: [String: JSONValue]) -> JSONValue {
        .object(JSONObject(dictionary.sorted { $0.key < $1.key }))
    }

    /// The value of member `key` (the first one, if a key is repeated), or nil.
    package subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }

    package var stringValue: String? { if case .string(let text) = self { return text }; return nil }
    package var boolValue: Bool? { if case .bool(let flag) = self { return flag }; return nil }
    package var arrayValue: [JSONValue]? { if case .array(let items) = self { return items }; return nil }
    package var objectValue: JSONObject? { if case .object(let members) = self { return members }; return nil }
    package var isNull: Bool { if case .null = self { return true }; return false }

    /// The number as a `Double`, for an integer or a double.
    package var numberValue: Double? {
        switch self {
        case .int(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }

    /// The number as an integer, when it has no fractional part.
    package var intValue: Int64? {
        switch self {
        case .int(let number): return number
        case .double(let number) where number.rounded() == number && abs(number) < 9.0e15: return Int64(number)
        default: return nil
        }
    }

    /// This object with member `key` set (replaced in place, or appended); any other value as it is.
    package func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var members) = self else { return self }
        members[key] = value
        return .object(members)
    }

    /// The name of the value's type, for messages ("a string", "an object").
    package var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension JSONValue: Hashable {
    package static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.int, .double), (.double, .int), (.double, .double): return lhs.numberValue == rhs.numberValue
        case (.array(let a), .array(let b)): return arraysEqual(a, b)
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }

    /// Element by element. (Swift 6.3.1's optimizer crashes on `a == b` for `[JSONValue]` inside this `==`.)
    private static func arraysEqual(_ a: [JSONValue], _ b: [JSONValue]) -> Bool {
        guard a.count == b.count else { return false }
        var index = 0
        while index < a.count {
            if !(a[index] == b[index]) { return false }
            index += 1
        }
        return true
    }

    /// Numbers hash as `Double`, so `1` and `1.0` (which are equal) hash alike.
    package func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let flag): hasher.combine(1); hasher.combine(flag)
        case .int, .double: hasher.combine(2); hasher.combine(numberValue)
        case .string(let text): hasher.combine(3); hasher.combine(text)
        case .array(let items): hasher.combine(4); hasher.combine(items)
        case .object(let members): hasher.combine(5); hasher.combine(members)
        }
    }
}

extension JSONValue: Codable {
    package init(from decoder: Decoder) throws {
        // Every failed attempt costs a thrown DecodingError (about 10 µs with JSONDecoder), so the likeliest
        // kinds come first. A value still lands in the same case as with any other order.
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let members = try? container.decode(JSONObject.self) {
            self = .object(members)
        } else if let number = try? container.decode(Int64.self) {
            self = .int(number)
        } else if let items = try? container.decode([JSONValue].self) {
            self = .array(items)
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Double.self) {
            self = .double(number)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    package func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let flag): try container.encode(flag)
        case .int(let number): try container.encode(number)
        case .double(let number): try container.encode(number)
        case .string(let text): try container.encode(text)
        case .array(let items): try container.encode(items)
        case .object(let members): try container.encode(members)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    /// Members in the order written.
    package init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
    package init(stringLiteral value: String) { self = .string(value) }
    package init(integerLiteral value: Int64) { self = .int(value) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    package init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    package init(nilLiteral: ()) { self = .null }
    package init(floatLiteral value: Double) { self = .double(value) }
}
