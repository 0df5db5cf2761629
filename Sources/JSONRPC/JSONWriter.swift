/// Serialises `JSONValue`s straight into bytes: compact, `/` unescaped, keys in dictionary order (as
/// `JSONEncoder` without `.sortedKeys`), an order of magnitude cheaper than `JSONEncoder` for small replies.
enum JSONWriter {
    struct NonFiniteNumber: Error {}

    static func write(_ value: JSONValue, into out: inout [UInt8]) throws(NonFiniteNumber) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let n): out.append(contentsOf: String(n).utf8)
        case .double(let d):
            guard d.isFinite else { throw NonFiniteNumber() }
            out.append(contentsOf: d.description.utf8)
        case .string(let s): JSONString.write(s, into: &out)
        case .array(let elements):
            out.append(ASCII.openBracket)
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(ASCII.comma) }
                try write(element, into: &out)
            }
            out.append(ASCII.closeBracket)
        case .object(let members):
            out.append(ASCII.openBrace)
            var first = true
            for (key, member) in members {
                if !first { out.append(ASCII.comma) }
                first = false
                JSONString.write(key, into: &out)
                out.append(ASCII.colon)
                try write(member, into: &out)
            }
            out.append(ASCII.closeBrace)
        }
    }

    static func write(_ id: RequestID, into out: inout [UInt8]) {
        switch id {
        case .number(let n): out.append(contentsOf: String(n).utf8)
        case .string(let s): JSONString.write(s, into: &out)
        case .null: out.append(contentsOf: "null".utf8)
        }
    }
}
