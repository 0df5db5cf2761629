import Foundation
import WireFormats

/// Scrubs the secrets of one call (client secret, Basic credential, code, tokens) out of text that came
/// from upstream before it goes into an error: Smartcar echoes values back ("Invalid code: ...").
/// Also drops control characters and caps the length, so a hostile body cannot flood or forge log lines.
struct Redactor: Sendable {
    private let secrets: [String]
    static let placeholder = "[redacted]"
    static let maxLength = 500

    init(_ secrets: [String?]) {
        // Longest first, so a secret containing another is replaced whole.
        self.secrets = secrets.compactMap { $0 }.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
    }

    func clean(_ text: String) -> String {
        var result = text
        for secret in secrets { result = result.replacingOccurrences(of: secret, with: Self.placeholder) }
        result = String(
            String.UnicodeScalarView(
                result.unicodeScalars.map {
                    $0.properties.generalCategory == .control ? " " : $0
                }))
        if result.count > Self.maxLength { result = String(result.prefix(Self.maxLength)) + "…" }
        return result
    }

    /// `clean` applied to every string inside a JSON value (e.g. a `resolution` object).
    func clean(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): .string(clean(text))
        case .array(let items): .array(items.map(clean))
        case .object(let members): .object(members.mapValues(clean))
        default: value
        }
    }
}
