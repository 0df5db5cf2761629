import Foundation
import WireFormats

/// A transcript string, split at its `{{…}}` holes.
///
/// - `{{NAME}}` is a capture: in what the agent sends (and the requests it makes) the first sight binds
///   NAME to the value found there and every later sight must equal it; in what the harness sends (and the
///   answers the fake gives) NAME stands for its bound value, and an unbound NAME is generated and bound.
/// - `{{*}}` matches anything; `{{*string}}`, `{{*int}}`, `{{*number}}`, `{{*bool}}`, `{{*time}}` (RFC 3339)
///   match a value of that type. Wildcards only ever match; they cannot be sent.
struct Template: Sendable, Equatable {
    enum Wildcard: String, Sendable, CaseIterable {
        case any = "*", string = "*string", int = "*int", number = "*number", bool = "*bool", time = "*time"
    }

    enum Hole: Sendable, Equatable {
        case wildcard(Wildcard)
        case capture(String)
    }

    enum Part: Sendable, Equatable {
        case literal(String)
        case hole(Hole)
    }

    struct Failure: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    let parts: [Part]

    init(_ text: String) throws(Failure) {
        var parts: [Part] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw Failure(description: "'{{' without a closing '}}' in \(JSONText.quoted(text))")
            }
            let inside = String(rest[open.upperBound..<close.lowerBound])
            parts.append(.hole(try Self.hole(inside, in: text)))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
    }

    private static func hole(_ inside: String, in text: String) throws(Failure) -> Hole {
        if inside.hasPrefix("*") {
            guard let wildcard = Wildcard(rawValue: inside) else {
                let known = Wildcard.allCases.map { "{{\($0.rawValue)}}" }.joined(separator: ", ")
                throw Failure(
                    description: "unknown wildcard {{\(inside)}} in \(JSONText.quoted(text)); "
                        + "use one of \(known)")
            }
            return .wildcard(wildcard)
        }
        guard isName(inside) else {
            throw Failure(
                description: "{{\(inside)}} is not a capture name (letters, digits, '_', '-' and '.', "
                    + "starting with a letter) in \(JSONText.quoted(text))")
        }
        return .capture(inside)
    }

    static func isName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, CharacterSet.letters.contains(first) else { return false }
        return text.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0)
        }
    }

    /// True when the text has no hole.
    var isPlain: Bool {
        parts.allSatisfy {
            if case .literal = $0 { return true }; return false
        }
    }

    /// The hole when the whole text is exactly one hole (it then stands for a whole JSON value).
    var wholeHole: Hole? {
        guard parts.count == 1, case .hole(let hole) = parts[0] else { return nil }
        return hole
    }

    /// The text as written, for messages.
    var text: String {
        parts.map { part in
            switch part {
            case .literal(let text): text
            case .hole(.wildcard(let wildcard)): "{{\(wildcard.rawValue)}}"
            case .hole(.capture(let name)): "{{\(name)}}"
            }
        }.joined()
    }

    /// Every capture name, in order of appearance.
    var captureNames: [String] {
        parts.compactMap {
            if case .hole(.capture(let name)) = $0 { return name }; return nil
        }
    }
}

extension Template.Wildcard {
    /// Whether a whole JSON value is of this wildcard's type.
    func accepts(_ value: JSONValue) -> Bool {
        switch self {
        case .any: return true
        case .string: return value.stringValue != nil
        case .int: return value.intValue != nil
        case .number: return value.numberValue != nil
        case .bool: return value.boolValue != nil
        case .time: return value.stringValue.map(Self.isTime) ?? false
        }
    }

    /// The regular expression for this wildcard inside a longer string.
    var pattern: String {
        switch self {
        case .any: ".*?"
        case .string: ".*?"
        case .int: "-?[0-9]+"
        case .number: "-?[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
        case .bool: "(?:true|false)"
        case .time: Self.timePattern
        }
    }

    static let timePattern =
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]+)?(?:Z|[-+][0-9]{2}:[0-9]{2})"

    static func isTime(_ text: String) -> Bool {
        text.range(of: "^" + timePattern + "$", options: .regularExpression) != nil
    }
}
