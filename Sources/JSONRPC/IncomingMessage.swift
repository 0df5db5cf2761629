import Foundation

/// A decoded incoming request or notification (`id == nil` means notification).
///
/// Keeps the raw bytes of `params` and decodes them on demand, straight into the method's own `Decodable`
/// type, so a message is never turned into a `JSONValue` tree just to be decoded again.
public struct IncomingMessage: Sendable {
    public let id: RequestID?
    public let method: String
    /// The bytes of the `params` value (an object or array); nil when absent or `null`.
    private let paramsJSON: Data?

    init(id: RequestID?, method: String, paramsJSON: Data?) {
        self.id = id
        self.method = method
        self.paramsJSON = paramsJSON
    }

    /// A message built in memory (for unit tests of handlers, or calling a handler directly).
    public init(id: RequestID?, method: String, params: JSONValue? = nil) {
        var json: [UInt8] = []
        let encoded = params.flatMap { $0.isNull ? nil : (try? JSONWriter.write($0, into: &json)) } != nil
        self.init(id: id, method: method, paramsJSON: encoded ? Data(json) : nil)
    }

    /// Decodes `params` as `P` (absent params decode from `{}`); a `DecodingError` becomes -32602 naming the
    /// field path, e.g. `invalid params: 'minValidity' must be a number`. Values are never quoted back. A
    /// `ResponseError` thrown by `P`'s own `init(from:)` (a validation) is passed through unchanged.
    public func params<P: Decodable>(_ type: P.Type = P.self) throws(ResponseError) -> P {
        do {
            return try JSONDecoder().decode(P.self, from: paramsJSON ?? Data("{}".utf8))
        } catch let error as ResponseError {
            throw error
        } catch let error as DecodingError {
            throw .invalidParams(ParamsErrorDescription.describe(error))
        } catch {
            throw .invalidParams("invalid params")
        }
    }

    /// `params` as a free-form value; nil when absent or `null`.
    public var rawParams: JSONValue? {
        paramsJSON.flatMap { try? JSONDecoder().decode(JSONValue.self, from: $0) }
    }
}
