import Foundation
import WireFormats

/// The first difference between a pattern and a value: where (`$.result.accessToken`) and what.
struct Mismatch: Sendable, CustomStringConvertible {
    var path: String
    var problem: String
    var description: String { "at \(path): \(problem)" }
}

/// Matches a transcript pattern against what the agent (or its upstream request) actually holds.
///
/// Objects match when they have the same members, in any order, each matching; a member `"..."` in the
/// pattern allows other members. Arrays match element by element. Numbers compare by value. Strings are
/// templates (`Template`): captures bind on first sight and must be equal afterwards.
struct Matcher {
    /// The member that lets an object pattern accept members it does not list.
    static let openMember = "..."

    /// nil when `actual` matches; the captures it bound are then added to `bindings` (left unchanged on a mismatch).
    /// With `binding` false (upstream request patterns), a capture must already be bound: an interaction
    /// that names `{{refresh_2}}` cannot serve a request before `refresh_2` exists.
    static func match(
        _ pattern: JSONValue, _ actual: JSONValue, path: String = "$", binding: Bool = true,
        bindings: inout [String: JSONValue]
    ) -> Mismatch? {
        var working = bindings
        let matcher = Matcher(binding: binding)
        if let mismatch = matcher.value(pattern, actual, path, &working) { return mismatch }
        bindings = working
        return nil
    }

    private let binding: Bool

    private init(binding: Bool) { self.binding = binding }

    private func value(
        _ pattern: JSONValue, _ actual: JSONValue, _ path: String,
        _ bindings: inout [String: JSONValue]
    ) -> Mismatch? {
        switch pattern {
        case .string(let text):
            return string(text, actual, path, &bindings)
        case .object(let members):
            guard case .object(let actualMembers) = actual else {
                return Mismatch(path: path, problem: "expected an object, got \(Self.show(actual))")
            }
            for member in members where member.key != Self.openMember {
                guard let found = actualMembers.first(where: { $0.key == member.key }) else {
                    let expected = Self.show(member.value)
                    let problem = "member \(JSONText.quoted(member.key)) is missing (expected \(expected))"
                    return Mismatch(path: path, problem: problem)
                }
                if let mismatch = value(member.value, found.value, Self.child(path, member.key), &bindings) {
                    return mismatch
                }
            }
            if !members.contains(where: { $0.key == Self.openMember }) {
                for extra in actualMembers where !members.contains(where: { $0.key == extra.key }) {
                    let problem =
                        "unexpected member \(JSONText.quoted(extra.key)): \(Self.show(extra.value))"
                        + " (add it, or \"...\": true to allow others)"
                    return Mismatch(path: path, problem: problem)
                }
            }
            return nil
        case .array(let items):
            guard case .array(let actualItems) = actual else {
                return Mismatch(path: path, problem: "expected an array, got \(Self.show(actual))")
            }
            for (index, item) in items.enumerated() {
                guard index < actualItems.count else {
                    return Mismatch(
                        path: "\(path)[\(index)]",
                        problem: "missing: the array has \(actualItems.count) elements, expected \(items.count)")
                }
                if let mismatch = value(item, actualItems[index], "\(path)[\(index)]", &bindings) { return mismatch }
            }
            if actualItems.count > items.count {
                return Mismatch(
                    path: "\(path)[\(items.count)]",
                    problem:
                        "unexpected element \(Self.show(actualItems[items.count])): the array has \(actualItems.count) elements, expected \(items.count)"
                )
            }
            return nil
        default:
            return pattern == actual
                ? nil : Mismatch(path: path, problem: "expected \(pattern.inlineText), got \(Self.show(actual))")
        }
    }

    private func string(
        _ text: String, _ actual: JSONValue, _ path: String,
        _ bindings: inout [String: JSONValue]
    ) -> Mismatch? {
        guard let template = try? Template(text), !template.isPlain else {
            guard actual != .string(text) else { return nil }
            return Mismatch(path: path, problem: "expected \(JSONText.quoted(text)), got \(Self.show(actual))")
        }
        let expected = Self.describe(template, bindings)
        switch template.wholeHole {
        case .wildcard(let wildcard)?:
            return wildcard.accepts(actual)
                ? nil : Mismatch(path: path, problem: "expected \(expected), got \(Self.show(actual))")
        case .capture(let name)?:
            if let bound = bindings[name] {
                return bound == actual
                    ? nil : Mismatch(path: path, problem: "expected \(expected), got \(Self.show(actual))")
            }
            guard binding else {
                return Mismatch(
                    path: path,
                    problem: "expected \(expected), which a request pattern cannot bind, got \(Self.show(actual))")
            }
            bindings[name] = actual
            return nil
        case nil:
            guard case .string(let actualText) = actual else {
                return Mismatch(path: path, problem: "expected a string like \(expected), got \(Self.show(actual))")
            }
            guard binding || template.captureNames.allSatisfy({ bindings[$0] != nil }) else {
                return Mismatch(
                    path: path,
                    problem: "expected \(expected), which a request pattern cannot bind, got \(Self.show(actual))")
            }
            guard let captured = Self.matchText(template, actualText, bindings) else {
                return Mismatch(path: path, problem: "expected \(expected), got \(Self.show(actual))")
            }
            for (name, value) in captured { bindings[name] = .string(value) }
            return nil
        }
    }

    /// Matches a template with holes inside a longer string; returns the captures it binds, or nil.
    static func matchText(
        _ template: Template, _ text: String,
        _ bindings: [String: JSONValue]
    ) -> [(String, String)]? {
        var pattern = "^"
        var groups: [String: Int] = [:]
        var order: [String] = []
        for part in template.parts {
            switch part {
            case .literal(let literal):
                pattern += NSRegularExpression.escapedPattern(for: literal)
            case .hole(.wildcard(let wildcard)):
                pattern += "(?:\(wildcard.pattern))"
            case .hole(.capture(let name)):
                if let bound = bindings[name] {
                    pattern += NSRegularExpression.escapedPattern(for: Filler.text(of: bound))
                } else if let group = groups[name] {
                    pattern += "\\\(group)"
                } else {
                    groups[name] = groups.count + 1
                    order.append(name)
                    pattern += "(.*?)"
                }
            }
        }
        pattern += "$"
        guard let regex = try? NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators]) else {
            return nil
        }
        let range = NSRange(text.startIndex..., in: text)
        guard let result = regex.firstMatch(in: text, range: range) else { return nil }
        return order.map { name in
            let groupRange = Range(result.range(at: groups[name]!), in: text)!
            return (name, String(text[groupRange]))
        }
    }

    /// A template for a message, with the values its bound captures stand for.
    static func describe(_ template: Template, _ bindings: [String: JSONValue]) -> String {
        let names = Array(Set(template.captureNames)).sorted()
        let notes = names.map { name in bindings[name].map { "\(name) = \(show($0))" } ?? "\(name) not yet bound" }
        return JSONText.quoted(template.text) + (notes.isEmpty ? "" : " (" + notes.joined(separator: ", ") + ")")
    }

    /// A value for a message, cut short if long.
    static func show(_ value: JSONValue) -> String {
        let text = value.inlineText
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }

    static func child(_ path: String, _ key: String) -> String {
        Template.isName(key) && !key.contains("-") && !key.contains(".")
            ? "\(path).\(key)" : "\(path)[\(JSONText.quoted(key))]"
    }
}

/// Fills a transcript pattern for sending (a client message, an upstream answer, an argument): captures
/// become their bound values, and an unbound capture is generated (`NAME-` and random hex) and bound.
enum Filler {
    struct Failure: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    static func fill(
        _ pattern: JSONValue, path: String = "$",
        bindings: inout [String: JSONValue]
    ) throws(Failure) -> JSONValue {
        switch pattern {
        case .string(let text):
            let template: Template
            do { template = try Template(text) } catch { throw Failure(description: "at \(path): \(error)") }
            if case .capture(let name)? = template.wholeHole { return value(of: name, &bindings) }
            return .string(try fillText(template, path: path, bindings: &bindings))
        case .object(let members):
            var filled: JSONObject = [:]
            for member in members {
                guard member.key != Matcher.openMember else {
                    throw Failure(
                        description: "at \(path): \"...\" only makes sense in what is matched, not in what is sent")
                }
                let value = try fill(member.value, path: Matcher.child(path, member.key), bindings: &bindings)
                filled.append((member.key, value))
            }
            return .object(filled)
        case .array(let items):
            var filled: [JSONValue] = []
            for (index, item) in items.enumerated() {
                filled.append(try fill(item, path: "\(path)[\(index)]", bindings: &bindings))
            }
            return .array(filled)
        default:
            return pattern
        }
    }

    /// Fills a string that must stay a string (arguments, environment values, header values).
    static func fillString(
        _ text: String, path: String,
        bindings: inout [String: JSONValue]
    ) throws(Failure) -> String {
        let template: Template
        do { template = try Template(text) } catch { throw Failure(description: "at \(path): \(error)") }
        return try fillText(template, path: path, bindings: &bindings)
    }

    private static func fillText(
        _ template: Template, path: String,
        bindings: inout [String: JSONValue]
    ) throws(Failure) -> String {
        var out = ""
        for part in template.parts {
            switch part {
            case .literal(let literal): out += literal
            case .hole(.capture(let name)): out += text(of: value(of: name, &bindings))
            case .hole(.wildcard(let wildcard)):
                throw Failure(
                    description:
                        "at \(path): the wildcard {{\(wildcard.rawValue)}} matches values but cannot be sent; use a capture name"
                )
            }
        }
        return out
    }

    private static func value(of name: String, _ bindings: inout [String: JSONValue]) -> JSONValue {
        if let bound = bindings[name] { return bound }
        let generated = JSONValue.string("\(name)-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))")
        bindings[name] = generated
        return generated
    }

    /// How a bound value reads inside a longer string: a string as itself, anything else as JSON.
    static func text(of value: JSONValue) -> String {
        value.stringValue ?? value.compactText
    }
}
