import Foundation

/// Encodes what the connection sends: responses (success always carries `result`, `null` when empty) and
/// notifications. Bodies only; `OutputWriter` adds the framing.
enum OutgoingMessage {
    static func response(id: RequestID, outcome: Result<JSONValue, ResponseError>) -> [UInt8] {
        if let body = try? encode(Response(id: id, outcome: outcome)) { return body }
        // Only a value JSON cannot represent (NaN, infinity) gets here.
        let fallback = Response(id: id, outcome: .failure(.internalError("internal error: the response could not be encoded")))
        return (try? encode(fallback)) ?? Array(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}"#.utf8)
    }

    static func notification(method: String, params: JSONValue) throws -> [UInt8] {
        try encode(Notification(method: method, params: params))
    }

    /// Joins already-encoded responses into one batch reply.
    static func batch(_ bodies: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [ASCII.openBracket]
        for (index, body) in bodies.enumerated() {
            if index > 0 { out.append(ASCII.comma) }
            out.append(contentsOf: body)
        }
        out.append(ASCII.closeBracket)
        return out
    }

    private static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    private enum Key: String, CodingKey { case jsonrpc, id, result, error, method, params }

    private struct Response: Encodable {
        let id: RequestID
        let outcome: Result<JSONValue, ResponseError>

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode("2.0", forKey: .jsonrpc)
            try container.encode(id, forKey: .id)
            switch outcome {
            case .success(let result): try container.encode(result, forKey: .result)
            case .failure(let error): try container.encode(error, forKey: .error)
            }
        }
    }

    private struct Notification: Encodable {
        let method: String
        let params: JSONValue

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode("2.0", forKey: .jsonrpc)
            try container.encode(method, forKey: .method)
            try container.encode(params, forKey: .params)
        }
    }
}
