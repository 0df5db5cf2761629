import Foundation

/// A decoded incoming request or notification (`id == nil` means notification).
///
/// Keeps the message's raw bytes and decodes `params` from them on demand, straight into the method's own
/// `Decodable` type, so a message is never turned into a `JSONValue` tree just to be decoded again.
public struct IncomingMessage: Sendable {
    public let id: RequestID?
    public let method: String
    /// The whole message as received (for a batch element: the element re-encoded once).
    private let json: Data
    /// False when `params` is absent or `null`.
    private let hasParams: Bool

    init(id: RequestID?, method: String, json: Data, hasParams: Bool) {
        self.id = id
        self.method = method
        self.json = json
        self.hasParams = hasParams
    }

    /// A message built in memory (for unit tests of handlers, or calling a handler directly).
    public init(id: RequestID?, method: String, params: JSONValue? = nil) {
        var json: [UInt8] = []
        if (try? JSONWriter.write(params.map { ["params": $0] } ?? [:], into: &json)) == nil { json = Array("{}".utf8) }
        self.init(id: id, method: method, json: Data(json), hasParams: params.map { !$0.isNull } ?? false)
    }

    /// Decodes `params` as `P` (absent params decode from `{}`); a `DecodingError` becomes -32602 naming the
    /// field path, e.g. `invalid params: 'minValidity' must be a number`. Values are never quoted back.
    public func params<P: Decodable>(_ type: P.Type = P.self) throws(ResponseError) -> P {
        do {
            if hasParams { return try JSONDecoder().decode(ParamsMember<P>.self, from: json).params }
            return try JSONDecoder().decode(P.self, from: Data("{}".utf8))
        } catch let error as DecodingError {
            throw .invalidParams(ParamsErrorDescription.describe(error, nested: hasParams))
        } catch {
            throw .invalidParams("invalid params")
        }
    }

    /// `params` as a free-form value; nil when absent or `null`.
    public var rawParams: JSONValue? {
        guard hasParams else { return nil }
        return try? JSONDecoder().decode(ParamsMember<JSONValue>.self, from: json).params
    }
}

/// The one member of a message that `params` decoding looks at.
private struct ParamsMember<P: Decodable>: Decodable {
    let params: P
}
