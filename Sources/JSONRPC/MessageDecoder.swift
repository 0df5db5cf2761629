import Foundation

/// What one incoming JSON text is, after decoding its envelope (never its params).
enum DecodedMessage {
    case request(IncomingMessage, RequestID)
    case notification(IncomingMessage)
    /// Answer this error (-32700 or -32600) to `id`, or to `null` when no id could be read.
    case invalid(RequestID?, ResponseError)
    /// A response from the peer; this connection sends no requests, so it is only logged.
    case response(RequestID?)
    /// The elements of a batch, each its own JSON text.
    case batch([Data])
}

/// Decodes message envelopes with `JSONScanner` (validating the whole text); the bytes of `params` are kept
/// for `IncomingMessage.params` to decode with `JSONDecoder`.
enum MessageDecoder {
    static func decode(_ json: Data) -> DecodedMessage {
        json.withUnsafeBytes { raw in
            let p = raw.bindMemory(to: UInt8.self)
            switch JSONScanner.scan(p) {
            case nil:
                return .invalid(LenientIDScanner.scan(p), .parseError("parse error: the message is not valid JSON"))
            case .array(let elements):
                return .batch(elements.map { Data(UnsafeBufferPointer(rebasing: p[$0.range])) })
            case .scalar:
                return .invalid(nil, .invalidRequest("invalid request: a message must be a JSON object or array"))
            case .object(let members):
                return classify(Envelope(members, p), json: json)
            }
        }
    }

    /// Decodes one element of a batch; anything but an object is an invalid request.
    static func decodeBatchElement(_ json: Data) -> DecodedMessage {
        guard json.first == ASCII.openBrace else {
            return .invalid(nil, .invalidRequest("invalid request: a batch element must be an object"))
        }
        return decode(json)
    }

    private static func classify(_ envelope: Envelope, json: Data) -> DecodedMessage {
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
            let params = envelope.params.map { json.subdata(in: (json.startIndex + $0.lowerBound)..<(json.startIndex + $0.upperBound)) }
            let message = IncomingMessage(id: id, method: method, paramsJSON: params)
            return id.map { .request(message, $0) } ?? .notification(message)
        }
    }
}

/// The envelope members of a message object; a wrong type is recorded so the id can still be answered.
private struct Envelope {
    enum Field<Value> { case absent, valid(Value), invalid }

    var jsonrpc: String?
    var id = Field<RequestID>.absent
    var method = Field<String>.absent
    /// Where the `params` value is, when it is an object or array.
    var params: Range<Int>?
    var paramsAreStructured = true
    var hasResultOrError = false

    init(_ members: [JSONScanner.Member], _ p: UnsafeBufferPointer<UInt8>) {
        for member in members {
            let value = member.value
            switch JSONString.decode(p, member.key) {
            case "jsonrpc":
                jsonrpc = value.kind == .string ? Self.string(value, p) : nil
            case "id":
                id = Self.requestID(value, p).map(Field.valid) ?? .invalid
            case "method":
                method = value.kind == .string ? .valid(Self.string(value, p)) : .invalid
            case "params":
                let structured = value.kind == .object || value.kind == .array
                params = structured ? value.range : nil
                paramsAreStructured = structured || value.kind == .null
            case "result", "error":
                hasResultOrError = true
            default:
                break
            }
        }
    }

    private static func string(_ value: JSONScanner.Value, _ p: UnsafeBufferPointer<UInt8>) -> String {
        JSONString.decode(p, (value.range.lowerBound + 1)..<(value.range.upperBound - 1))
    }

    /// Same reading as `RequestID(JSONValue)`: a string, null, or a number with an integral value.
    private static func requestID(_ value: JSONScanner.Value, _ p: UnsafeBufferPointer<UInt8>) -> RequestID? {
        switch value.kind {
        case .string: return .string(string(value, p))
        case .null: return .null
        case .number:
            let text = String(decoding: UnsafeBufferPointer(rebasing: p[value.range]), as: UTF8.self)
            if let n = Int64(text) { return .number(n) }
            return Double(text).flatMap { RequestID(.double($0)) }
        default: return nil
        }
    }
}
