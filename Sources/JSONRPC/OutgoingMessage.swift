/// Encodes what the connection sends: responses (success always carries `result`, `null` when empty) and
/// notifications, `"jsonrpc":"2.0"` first. Bodies only; `OutputWriter` adds the framing.
enum OutgoingMessage {
    static func response(id: RequestID, outcome: Result<JSONValue, ResponseError>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        JSONWriter.write(id, into: &out)
        let envelopeEnd = out.count
        do {
            switch outcome {
            case .success(let result):
                out.append(contentsOf: #","result":"#.utf8)
                try JSONWriter.write(result, into: &out)
            case .failure(let error):
                try write(error, into: &out)
            }
        } catch {
            // Only a number JSON cannot represent (NaN, infinity) gets here.
            out.removeSubrange(envelopeEnd...)
            try? write(.internalError("internal error: the response could not be encoded"), into: &out)
        }
        out.append(ASCII.closeBrace)
        return out
    }

    static func notification(method: String, params: JSONValue) throws -> [UInt8] {
        var out: [UInt8] = Array(#"{"jsonrpc":"2.0","method":"#.utf8)
        JSONString.write(method, into: &out)
        out.append(contentsOf: #","params":"#.utf8)
        try JSONWriter.write(params, into: &out)
        out.append(ASCII.closeBrace)
        return out
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

    private static func write(_ error: ResponseError, into out: inout [UInt8]) throws(JSONWriter.NonFiniteNumber) {
        out.append(contentsOf: #","error":{"code":"#.utf8)
        out.append(contentsOf: String(error.code).utf8)
        out.append(contentsOf: #","message":"#.utf8)
        JSONString.write(error.message, into: &out)
        if let data = error.data {
            out.append(contentsOf: #","data":"#.utf8)
            try JSONWriter.write(data, into: &out)
        }
        out.append(ASCII.closeBrace)
    }
}
