/// Writes a `JSONValue` back as text, members in order.
extension JSONValue {
    /// No spaces at all: what goes on the wire.
    package var compactText: String {
        var out = ""
        write(to: &out, separator: ",", colon: ":")
        return out
    }

    /// One line with a space after each `,` and `:`: how a transcript step or a report shows a value.
    package var inlineText: String {
        var out = ""
        write(to: &out, separator: ", ", colon: ": ")
        return out
    }

    /// One line when it fits in `width` columns, else members and elements one per line (indented by two),
    /// each of them again on one line if it fits.
    package func prettyText(width: Int = 110) -> String {
        var out = ""
        writePretty(to: &out, indent: 0, column: 0, width: width)
        return out
    }

    /// `indent`: the indentation of the line the value starts on; `column`: where on it the value starts.
    private func writePretty(to out: inout String, indent: Int, column: Int, width: Int) {
        let inline = inlineText
        if column + inline.count <= width { out += inline; return }
        let padding = String(repeating: " ", count: indent + 2)
        switch self {
        case .object(let members) where !members.isEmpty:
            out += "{\n"
            for (index, member) in members.enumerated() {
                let key = JSONText.quoted(member.key) + ": "
                out += padding + key
                member.value.writePretty(to: &out, indent: indent + 2, column: indent + 2 + key.count, width: width)
                out += index == members.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        case .array(let items) where items.allSatisfy(\.isScalar):
            // Scalars are packed, as many on a line as fit.
            out += "[\n" + padding
            var column = indent + 2
            for (index, item) in items.enumerated() {
                let text = item.inlineText + (index == items.count - 1 ? "" : ",")
                if column > indent + 2, column + 1 + text.count > width {
                    out += "\n" + padding
                    column = indent + 2
                } else if column > indent + 2 {
                    out += " "
                    column += 1
                }
                out += text
                column += text.count
            }
            out += "\n" + String(repeating: " ", count: indent) + "]"
        case .array(let items) where !items.isEmpty:
            out += "[\n"
            for (index, item) in items.enumerated() {
                out += padding
                item.writePretty(to: &out, indent: indent + 2, column: indent + 2, width: width)
                out += index == items.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        default:
            out += inline
        }
    }

    private func write(to out: inout String, separator: String, colon: String) {
        switch self {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .int(let number): out += String(number)
        case .double(let number):
            out += number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .string(let text): out += JSONText.quoted(text)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += separator }
                item.write(to: &out, separator: separator, colon: colon)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { out += separator }
                out += JSONText.quoted(member.key) + colon
                member.value.write(to: &out, separator: separator, colon: colon)
            }
            out += "}"
        }
    }

    /// Neither an array nor an object.
    var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }
}
