/// Turns a `DecodingError` from params decoding into a -32602 message that names the field, never its value
/// (a value may be a secret such as an authorization code).
enum ParamsErrorDescription {
    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return "invalid params: missing required field '\(path(context.codingPath + [key]))'"
        case .typeMismatch(let type, let context):
            return "invalid params: \(subject(context.codingPath)) must be \(kind(of: type))"
        case .valueNotFound(let type, let context):
            return "invalid params: \(subject(context.codingPath)) must be \(kind(of: type)), not null"
        case .dataCorrupted(let context):
            return "invalid params: \(subject(context.codingPath)) is invalid"
        @unknown default:
            return "invalid params"
        }
    }

    private static func subject(_ codingPath: [any CodingKey]) -> String {
        let text = path(codingPath)
        return text.isEmpty ? "params" : "'\(text)'"
    }

    /// `a.b[2].c`, relative to `params`.
    private static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text
    }

    private static func kind(of type: Any.Type) -> String {
        if type == String.self || type == Substring.self { return "a string" }
        if type == Bool.self { return "a boolean" }
        let numbers: [Any.Type] = [Int.self, Int8.self, Int16.self, Int32.self, Int64.self, UInt.self, UInt8.self,
                                   UInt16.self, UInt32.self, UInt64.self, Double.self, Float.self]
        if numbers.contains(where: { $0 == type }) { return "a number" }
        let name = String(describing: type)
        if name.hasPrefix("Array") || name.hasPrefix("[") && !name.contains(":") { return "an array" }
        return "an object"
    }
}
