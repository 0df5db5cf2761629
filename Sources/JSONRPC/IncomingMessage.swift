import Foundation
import WireFormats

/// A request (with an `id`) or notification (without) as read from the client. Its params are decoded on
/// demand, straight from the message's bytes, into the struct the method expects.
package struct IncomingMessage: Sendable {
    package let id: RequestID?
    package let method: String
    /// The whole message as received; `params(_:)` decodes from it.
    let raw: [UInt8]
    let hasParams: Bool
    /// Where `params` sit in `raw`, when the envelope was read by `RequestScanner`.
    let paramsRange: Range<Int>?

    init(id: RequestID?, method: String, raw: [UInt8], hasParams: Bool, paramsRange: Range<Int>? = nil) {
        self.id = id
        self.method = method
        self.raw = raw
        self.hasParams = hasParams
        self.paramsRange = paramsRange
    }

    /// Decodes `params` as `P`; absent params decode from `{}`. A mismatch becomes -32602 with a message that
    /// names the field, e.g. `invalid params: 'minValidity' must be a number`.
    package func params<P: Decodable>(_ type: P.Type) throws(ResponseError) -> P {
        do {
            if hasParams { return try JSONDecoder().decode(ParamsOnly<P>.self, from: Data(raw)).params }
            return try JSONDecoder().decode(P.self, from: Data("{}".utf8))
        } catch let error as DecodingError {
            throw .invalidParams(Self.describe(error))
        } catch {
            throw .invalidParams("invalid params")
        }
    }

    /// The params as a free-form JSON value (nil when absent).
    package var rawParams: JSONValue? {
        guard hasParams else { return nil }
        return try? JSONDecoder().decode(ParamsOnly<JSONValue>.self, from: Data(raw)).params
    }

    private struct ParamsOnly<P: Decodable>: Decodable { let params: P }

    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey], appending key: (any CodingKey)? = nil) -> String {
            var keys = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            if let key { keys.append(key.stringValue) }
            if keys.first == "params" { keys.removeFirst() }
            return keys.isEmpty ? "params" : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        func kind(_ type: Any.Type) -> String {
            switch type {
            case is String.Type: return "a string"
            case is Bool.Type: return "a boolean"
            case is Int.Type, is Int32.Type, is Int64.Type, is Double.Type, is UInt16.Type: return "a number"
            case is [Any].Type: return "an array"
            default: return String(describing: type).hasPrefix("Array") ? "an array" : "an object"
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "invalid params: missing required field '\(path(context.codingPath, appending: key))'"
        case .typeMismatch(let type, let context):
            return "invalid params: '\(path(context.codingPath))' must be \(kind(type))"
        case .valueNotFound(let type, let context):
            return "invalid params: '\(path(context.codingPath))' must be \(kind(type)), not null"
        case .dataCorrupted(let context):
            return "invalid params: '\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default:
            return "invalid params"
        }
    }
}
