/// A JSON text built with keys in the order written, to imitate Smartcar's bodies field for field
/// (including explicit `null`s, which synthesised `Codable` would drop).
enum WireJSON: Sendable {
    case string(String)
    case int(Int)
    case null
    case object(KeyValuePairs<String, WireJSON>)

    var text: String {
        switch self {
        case .string(let value): WireJSON.quote(value)
        case .int(let value): String(value)
        case .null: "null"
        case .object(let pairs): "{" + pairs.map { WireJSON.quote($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

extension HTTPServerResponse {
    /// A JSON answer the way Smartcar sends one.
    static func json(_ status: Int, _ body: WireJSON, headers: [(name: String, value: String)] = []) -> HTTPServerResponse {
        HTTPServerResponse(status: status, contentType: "application/json; charset=utf-8", body: body.text, headers: headers)
    }
}
