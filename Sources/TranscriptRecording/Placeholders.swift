/// Every secret and volatile value a recorded session has shown so far, each with a stable placeholder
/// name (`{{access_1}}`, `{{code_2}}`): the same value always becomes the same placeholder, so the
/// transcript still says "the access token the refresh returned is the one getToken hands out".
struct Placeholders {
    private var names: [String: String] = [:]
    private var counts: [String: Int] = [:]
    /// Values to look for inside longer strings, longest first (so a value containing another wins).
    private var embedded: [(value: String, name: String)] = []
    /// Shorter values are replaced only where they stand alone: inside longer text they would hit
    /// innocent words.
    static let minimumEmbeddedLength = 6

    /// Gives `value` a fixed name (`client_secret`, `upstream`, `store`).
    mutating func fix(_ value: String?, as name: String) {
        guard let value, !value.isEmpty, names[value] == nil else { return }
        add(value, name)
    }

    /// `{{NAME}}` for `value`: its name if it was seen before, else the next `KIND_N`.
    mutating func placeholder(for value: String, kind: String) -> String {
        guard !value.isEmpty else { return value }
        if let name = names[value] { return "{{\(name)}}" }
        let number = counts[kind, default: 0] + 1
        counts[kind] = number
        let name = "\(kind)_\(number)"
        add(value, name)
        return "{{\(name)}}"
    }

    /// `{{NAME}}` if `value` was seen before.
    func known(_ value: String) -> String? { names[value].map { "{{\($0)}}" } }

    /// `text` with every known value of sufficient length replaced by its placeholder, in one pass (a
    /// placeholder already in the text is left alone).
    func replacingKnown(in text: String) -> String {
        if let whole = known(text) { return whole }
        guard !embedded.isEmpty, text.count >= Self.minimumEmbeddedLength else { return text }
        var out = ""
        var index = text.startIndex
        scanning: while index < text.endIndex {
            let rest = text[index...]
            if rest.hasPrefix("{{"), let close = rest.range(of: "}}") {
                out += rest[..<close.upperBound]
                index = close.upperBound
                continue
            }
            for (value, name) in embedded where rest.hasPrefix(value) {
                out += "{{\(name)}}"
                index = text.index(index, offsetBy: value.count)
                continue scanning
            }
            out.append(text[index])
            index = text.index(after: index)
        }
        return out
    }

    private mutating func add(_ value: String, _ name: String) {
        names[value] = name
        guard value.count >= Self.minimumEmbeddedLength else { return }
        embedded.append((value, name))
        embedded.sort { $0.value.count > $1.value.count }
    }
}
