import Foundation

/// What one incoming JSON text is, after decoding its envelope (never its params).
enum DecodedMessage {
    case request(IncomingMessage, RequestID)
    case notification(IncomingMessage)
    /// Answer this error (-32700 or -32600) to `id`, or to `null` when no id could be read.
    case invalid(RequestID?, ResponseError)
    /// A response from the peer; this connection sends no requests, so it is only logged.
    case response(RequestID?)
    case batch([JSONValue])
}

/// Decodes message envelopes with `JSONDecoder` (much faster than `JSONSerialization` on Linux).
enum MessageDecoder {
    static func decode(_ json: Data) -> DecodedMessage {
        let topLevel: TopLevel
        do {
            // JSONDecoder does not check the UTF-8 of strings it is not asked to decode (params).
            guard String(validating: json, as: UTF8.self) != nil else { throw InvalidUTF8() }
            topLevel = try JSONDecoder().decode(TopLevel.self, from: json)
        } catch {
            // The envelope decoder accepts any JSON value, so only a syntax error lands here.
            let id = json.withUnsafeBytes { LenientIDScanner.scan($0.bindMemory(to: UInt8.self)) }
            return .invalid(id, .parseError("parse error: the message is not valid JSON"))
        }
        switch topLevel {
        case .batch(let elements): return .batch(elements)
        case .single(let envelope): return classify(envelope, json: json)
        }
    }

    /// Decodes one element of a batch (re-encoded once so its params can be decoded like any message's).
    static func decodeBatchElement(_ element: JSONValue) -> DecodedMessage {
        guard case .object = element else {
            return .invalid(nil, .invalidRequest("invalid request: a batch element must be an object"))
        }
        guard let json = try? JSONEncoder().encode(element),
              let envelope = try? JSONDecoder().decode(Envelope.self, from: json)
        else { return .invalid(nil, .internalError("internal error: could not re-encode a batch element")) }
        return classify(envelope, json: json)
    }

    private static func classify(_ envelope: Envelope, json: Data) -> DecodedMessage {
        guard envelope.isObject else {
            return .invalid(nil, .invalidRequest("invalid request: a message must be a JSON object or array"))
        }
        let id: RequestID?
        switch envelope.id {
        case .absent: id = nil
        case .valid(let value): id = value
        case .invalid: return .invalid(nil, .invalidRequest("invalid request: 'id' must be a string, an integer or null"))
        }
        guard envelope.jsonrpc == "2.0" else {
            return .invalid(id, .invalidRequest("invalid request: 'jsonrpc' must be \"2.0\""))
        }
        switch envelope.method {
        case .absent where envelope.hasResultOrError:
            return .response(id)
        case .absent:
            return .invalid(id, .invalidRequest("invalid request: missing 'method'"))
        case .invalid:
            return .invalid(id, .invalidRequest("invalid request: 'method' must be a string"))
        case .valid(let method):
            guard envelope.paramsAreStructured else {
                return .invalid(id, .invalidRequest("invalid request: 'params' must be an object or an array"))
            }
            let message = IncomingMessage(id: id, method: method, json: json, hasParams: envelope.hasParams)
            return id.map { .request(message, $0) } ?? .notification(message)
        }
    }
}

private struct InvalidUTF8: Error {}

/// A message's top level: one envelope, or a batch.
private enum TopLevel: Decodable {
    case single(Envelope)
    case batch([JSONValue])

    init(from decoder: any Decoder) throws {
        let envelope = try Envelope(from: decoder)
        if !envelope.isObject, let elements = try? decoder.singleValueContainer().decode([JSONValue].self) {
            self = .batch(elements)
        } else {
            self = .single(envelope)
        }
    }
}

/// The envelope members, decoded tolerantly: a wrong type is recorded, not thrown, so the id can still be
/// read for the -32600 answer and decoding only throws for invalid JSON.
private struct Envelope: Decodable {
    enum Field<Value> { case absent, valid(Value), invalid }

    var isObject = false
    var jsonrpc: String?
    var id = Field<RequestID>.absent
    var method = Field<String>.absent
    var hasParams = false
    var paramsAreStructured = true
    var hasResultOrError = false

    private enum Key: String, CodingKey { case jsonrpc, id, method, params, result, error }

    init(from decoder: any Decoder) throws {
        guard let container = try? decoder.container(keyedBy: Key.self) else { return }
        isObject = true
        jsonrpc = try? container.decode(String.self, forKey: .jsonrpc)
        if container.contains(.id) {
            id = (try? container.decode(RequestID.self, forKey: .id)).map(Field.valid) ?? .invalid
        }
        if container.contains(.method) {
            method = (try? container.decode(String.self, forKey: .method)).map(Field.valid) ?? .invalid
        }
        if container.contains(.params), !((try? container.decodeNil(forKey: .params)) ?? false) {
            hasParams = true
            paramsAreStructured = (try? container.decode(StructuredProbe.self, forKey: .params)) != nil
        }
        hasResultOrError = container.contains(.result) || container.contains(.error)
    }
}

/// Succeeds for a JSON object or array without decoding its contents.
private struct StructuredProbe: Decodable {
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        if (try? decoder.container(keyedBy: AnyKey.self)) == nil {
            _ = try decoder.unkeyedContainer()
        }
    }
}
