/// Params that are a flat object: every member a string without escapes, a number, a boolean or null, and
/// each name written once. A handler's immediate path reads these without a `JSONDecoder`; params of any
/// other shape are not offered this way (`IncomingMessage.flatParams` is nil) and go through `params(_:)`.
public struct FlatParams: Sendable {
    public enum Value: Sendable, Equatable {
        case string(String)
        /// A finite number, as `JSONDecoder` reads it into a `Double`.
        case number(Double)
        case bool(Bool)
        case null
    }

    private var members: [(name: String, value: Value)]

    /// No params at all.
    static let none = FlatParams(members: [])

    private init(members: [(name: String, value: Value)]) { self.members = members }

    /// The member called `name`; nil when there is none.
    public subscript(name: String) -> Value? {
        for member in members where member.name == name { return member.value }
        return nil
    }

    /// Reads the object at `range` of already validated JSON; nil when it is not flat.
    static func read(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> FlatParams? {
        var cursor = JSONCursor(UnsafeBufferPointer(rebasing: p[..<range.upperBound]), at: range.lowerBound)
        guard cursor.consume(UInt8(ascii: "{")) else { return nil }
        var members: [(name: String, value: Value)] = []
        if cursor.consume(UInt8(ascii: "}")) { return FlatParams(members: members) }
        repeat {
            cursor.skipWhitespace()
            let nameStart = cursor.i
            guard cursor.current == UInt8(ascii: "\""), cursor.skipString(), !cursor.lastStringHadEscape else { return nil }
            let name = text(p, (nameStart + 1)..<(cursor.i - 1))
            guard cursor.consume(UInt8(ascii: ":")) else { return nil }
            cursor.skipWhitespace()
            let valueStart = cursor.i
            guard let kind = cursor.skipValue() else { return nil }
            let value: Value
            switch kind {
            case .string:
                guard !cursor.lastStringHadEscape else { return nil }
                value = .string(text(p, (valueStart + 1)..<(cursor.i - 1)))
            case .number:
                guard let number = Double(text(p, valueStart..<cursor.i)), number.isFinite else { return nil }
                value = .number(number)
            case .bool: value = .bool(p[valueStart] == UInt8(ascii: "t"))
            case .null: value = .null
            case .object, .array: return nil
            }
            guard !members.contains(where: { $0.name == name }) else { return nil }
            members.append((name, value))
        } while cursor.consume(UInt8(ascii: ","))
        guard cursor.consume(UInt8(ascii: "}")) else { return nil }
        return FlatParams(members: members)
    }

    private static func text(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: p[range]), as: UTF8.self)
    }
}
