/// One feature flag's value: Smartcar writes flags as `name:value`, booleans lower-case, numbers as written.
package enum FlagValue: Sendable, Equatable, Codable, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, CustomStringConvertible
{
    case string(String)
    case bool(Bool)
    case int(Int64)
    case double(Double)

    package init(stringLiteral value: String) { self = .string(value) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    package init(integerLiteral value: Int64) { self = .int(value) }
    package init(floatLiteral value: Double) { self = .double(value) }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "a flag value must be a string, a boolean or a number")
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        }
    }

    /// The value as it appears after `name:` (`true`, `DE`, `10`, `1.5`).
    package var description: String {
        switch self {
        case .string(let value): value
        case .bool(let value): value ? "true" : "false"
        case .int(let value): String(value)
        case .double(let value): String(value)
        }
    }
}

/// Feature flags for Connect and the token endpoint, in a fixed order.
///
/// Order is kept because the Python SDK writes flags in its dictionary's insertion order and we match its
/// URLs byte for byte: a dictionary literal keeps the order it was written in. A JSON object carries no
/// reliable order once decoded, so flags decoded from JSON (or built from a Swift dictionary) are sorted
/// by name, which keeps URLs deterministic.
package struct FeatureFlags: Sendable, Equatable, Codable, ExpressibleByDictionaryLiteral {
    package var entries: [(name: String, value: FlagValue)] {
        get { storage.map { ($0.name, $0.value) } }
        set { storage = newValue.map { Entry(name: $0.name, value: $0.value) } }
    }

    private struct Entry: Sendable, Equatable {
        var name: String
        var value: FlagValue
    }

    private var storage: [Entry]

    /// Flags in the order given.
    package init(_ entries: [(String, FlagValue)]) {
        storage = entries.map { Entry(name: $0.0, value: $0.1) }
    }

    /// Flags sorted by name.
    package init(_ dictionary: [String: FlagValue]) {
        self.init(dictionary.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    package init(dictionaryLiteral elements: (String, FlagValue)...) {
        self.init(elements)
    }

    package init(from decoder: any Decoder) throws {
        self.init(try [String: FlagValue](from: decoder))
    }

    package func encode(to encoder: any Encoder) throws {
        try Dictionary(storage.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last }).encode(to: encoder)
    }

    package var isEmpty: Bool { storage.isEmpty }

    /// `name:value` pairs joined by one space (`country:DE b:true`): the value of a `flags` parameter.
    package var parameterValue: String {
        storage.map { "\($0.name):\($0.value)" }.joined(separator: " ")
    }
}
