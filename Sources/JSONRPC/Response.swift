import Foundation

/// A response as it goes on the wire: `result` is always present on success (`null` when empty).
struct Response: Encodable, Sendable {
    var id: RequestID
    var outcome: Result<any Encodable & Sendable, ResponseError>

    private enum Keys: String, CodingKey { case jsonrpc, id, result, error }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode("2.0", forKey: .jsonrpc)
        try container.encode(id, forKey: .id)
        switch outcome {
        case .success(let result): try container.encode(result, forKey: .result)
        case .failure(let error): try container.encode(error, forKey: .error)
        }
    }

    static func error(_ error: ResponseError, id: RequestID?) -> Response { Response(id: id ?? .null, outcome: .failure(error)) }
}

/// An agent → client notification.
struct OutgoingNotification: Encodable {
    var jsonrpc = "2.0"
    var method: String
    var params: JSONValue
}

enum WireEncoding {
    /// Encodes a message body: compact, `/` unescaped.
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        // Every value sent is built from Codable structs and JSONValue, which always encode; a failure here is
        // a programming error, answered with a generic internal error rather than a crash.
        if let data = try? encoder.encode(value) { return Array(data) }
        return Array(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error: unencodable reply"}}"#.utf8)
    }

    static func frame(_ body: [UInt8], style: FramingStyle) -> [UInt8] {
        switch style {
        case .contentLength: return Array("Content-Length: \(body.count)\r\n\r\n".utf8) + body
        case .newlineDelimited: return body + [0x0A]
        }
    }
}
