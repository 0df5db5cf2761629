import WireFormats

/// A JSON-RPC request id: a number, a string, or (discouraged by the spec, but legal) `null`.
///
/// A message without an `id` member is a notification and has no `RequestID` at all.
package enum RequestID: Hashable, Sendable, CustomStringConvertible {
    case number(Int64)
    case string(String)
    case null

    package var description: String {
        switch self {
        case .number(let n): return String(n)
        case .string(let s): return "\"\(s)\""
        case .null: return "null"
        }
    }

    package var jsonValue: JSONValue {
        switch self {
        case .number(let n): return .int(n)
        case .string(let s): return .string(s)
        case .null: return .null
        }
    }

    /// The id a JSON value denotes, or nil when the value cannot be an id (an object, a fraction, a boolean).
    package init?(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .string(let s): self = .string(s)
        case .int(let n): self = .number(n)
        case .double:
            guard let n = value.intValue else { return nil }
            self = .number(n)
        default: return nil
        }
    }
}

extension RequestID: Codable {
    package init(from decoder: Decoder) throws {
        // Integers first: the common case decodes without a (costly) failed attempt.
        let container = try decoder.singleValueContainer()
        if let n = try? container.decode(Int64.self) {
            self = .number(n)
            return
        }
        let value = try JSONValue(from: decoder)
        guard let id = RequestID(value) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "an id must be a string, an integer or null"))
        }
        self = id
    }

    package func encode(to encoder: Encoder) throws {
        try jsonValue.encode(to: encoder)
    }
}
