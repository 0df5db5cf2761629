import Foundation

/// Finds known secret values in text, in every form they could leak in: as they are, JSON-escaped,
/// percent- and form-encoded, base64 (and the `Authorization: Basic` credential of the client secret). A
/// leaked fragment counts too: every 16-byte window of each form is indexed, so any 16 consecutive
/// characters of a secret are found (a crash report shows memory 16 bytes at a time). A form shorter than that is
/// indexed whole, by its length: a scan is one pass over the text however many secrets it looks for.
///
/// Reusable for any text (another suite's transcripts, a log file): `add` the secrets, `scan` the bytes.
package struct SecretScanner {
    package struct Hit: CustomStringConvertible {
        package var label: String
        package var form: String
        package var source: String
        package var offset: Int
        /// The text around the hit, the secret's bytes masked.
        package var context: String

        package var description: String { "\(label) (\(form)) in \(source) at byte \(offset): …\(context)…" }
    }

    private struct Form {
        var label: String
        var name: String
        var bytes: [UInt8]
    }

    private struct Window: Hashable {
        var low: UInt64
        var high: UInt64
    }

    private struct ShortForm: Hashable {
        var window: Window
        var length: Int
    }

    private static let width = 16

    private var forms: [Form] = []
    private var windows: [Window: [Int]] = [:]
    /// Forms shorter than `width`, by their bytes (zero-padded to a `Window`) and length.
    private var short: [ShortForm: [Int]] = [:]
    private var shortLengths: Set<Int> = []
    private var known: Set<String> = []
    /// The bytes some form holds: a window is looked up only where that many of them stand in a row, so sealed
    /// (random) and zeroed pages cost one table read per byte.
    private var alphabet = [Bool](repeating: false, count: 256)

    package init() {}

    package var count: Int { known.count }

    /// Adds a secret (and its encoded forms) under a label such as "refresh token".
    package mutating func add(_ label: String, _ value: String) {
        guard value.count >= 6, known.insert(value).inserted else { return }
        var seen: Set<[UInt8]> = []
        for (name, text) in Self.forms(of: value) {
            let bytes = Array(text.utf8)
            guard seen.insert(bytes).inserted else { continue }
            let index = forms.count
            forms.append(Form(label: label, name: name, bytes: bytes))
            for byte in bytes { alphabet[Int(byte)] = true }
            guard bytes.count >= Self.width else {
                short[ShortForm(window: Self.window(bytes[...]), length: bytes.count), default: []].append(index)
                shortLengths.insert(bytes.count)
                continue
            }
            for offset in 0...(bytes.count - Self.width) {
                windows[bytes.withUnsafeBytes { Self.window($0, at: offset) }, default: []].append(index)
            }
        }
    }

    /// The client secret also leaks as the Basic credential `base64(id:secret)`.
    package mutating func addClientSecret(_ secret: String, clientID: String) {
        add("client secret", secret)
        add("Basic credential", Data("\(clientID):\(secret)".utf8).base64EncodedString())
    }

    package func scan(_ text: [UInt8], source: String) -> [Hit] {
        var found: [(index: Int, offset: Int, length: Int)] = []
        // A window (or short form) found once has reported all its forms: it is not looked at again (thousands
        // of forms can share one, such as the uuid-shaped values of a scale test).
        var seen: Set<Window> = []
        var seenShort: Set<[UInt8]> = []
        let lengths = shortLengths.sorted()
        text.withUnsafeBytes { raw in
            var run = 0  // bytes of the alphabet ending at `end`
            for end in 0..<raw.count {
                run = alphabet[Int(raw[end])] ? run + 1 : 0
                guard run >= (lengths.first ?? Self.width) else { continue }
                if run >= Self.width {
                    let window = Self.window(raw, at: end + 1 - Self.width)
                    if let candidates = windows[window], seen.insert(window).inserted {
                        found += candidates.map { ($0, end + 1 - Self.width, Self.width) }
                    }
                }
                for length in lengths where length <= run {
                    let start = end + 1 - length
                    let window =
                        start + Self.width <= raw.count
                        ? Self.masked(Self.window(raw, at: start), length: length) : Self.window(text[start...end])
                    if let candidates = short[ShortForm(window: window, length: length)],
                        seenShort.insert(Array(text[start...end])).inserted
                    {
                        found += candidates.map { ($0, end + 1 - length, length) }
                    }
                }
            }
        }
        var reported: Set<Int> = []
        found = found.filter { reported.insert($0.index).inserted }
        return found.map { hit($0.index, in: text, at: $0.offset, length: $0.length, source: source) }
    }

    private func hit(_ index: Int, in text: [UInt8], at offset: Int, length: Int, source: String) -> Hit {
        let before = text[max(0, offset - 40)..<offset]
        let after = text[(offset + length)..<min(text.count, offset + length + 40)]
        let context =
            String(decoding: before, as: UTF8.self) + String(repeating: "█", count: length)
            + String(decoding: after, as: UTF8.self)
        return Hit(
            label: forms[index].label, form: forms[index].name, source: source, offset: offset,
            context: context.replacingOccurrences(of: "\n", with: "⏎"))
    }

    /// The first `length` bytes of `window` (little-endian loads: the first byte is the lowest).
    private static func masked(_ window: Window, length: Int) -> Window {
        length <= 8
            ? Window(low: length == 8 ? window.low : window.low & (1 << (8 * UInt64(length)) - 1), high: 0)
            : Window(low: window.low, high: window.high & (1 << (8 * UInt64(length - 8)) - 1))
    }

    /// Up to 16 bytes, zero-padded, packed as `window(_:at:)` loads them on a little-endian machine.
    private static func window(_ bytes: ArraySlice<UInt8>) -> Window {
        var low: UInt64 = 0, high: UInt64 = 0
        for (i, byte) in bytes.enumerated() {
            if i < 8 { low |= UInt64(byte) << (8 * i) } else { high |= UInt64(byte) << (8 * (i - 8)) }
        }
        return Window(low: low, high: high)
    }

    // Whole-word loads, not a loop over bytes: a scan reads every offset of tens of megabytes.
    private static func window(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Window {
        Window(
            low: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
            high: bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
    }

    /// The forms a value takes on the way to a log line or an error message.
    private static func forms(of value: String) -> [(String, String)] {
        let unreserved = CharacterSet(
            charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        var formAllowed = unreserved
        formAllowed.insert(" ")
        let encoder = JSONEncoder()
        let json =
            (try? encoder.encode(value)).map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? value
        let asciiJSON = value.unicodeScalars.map { $0.isASCII ? String($0) : String(format: "\\u%04x", $0.value) }
            .joined()
        return [
            ("as is", value),
            ("JSON-escaped", json),
            ("JSON-escaped, slashes unescaped", json.replacingOccurrences(of: "\\/", with: "/")),
            ("JSON \\u-escaped", asciiJSON.replacingOccurrences(of: "/", with: "\\/")),
            ("percent-encoded", value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value),
            (
                "form-encoded",
                (value.addingPercentEncoding(withAllowedCharacters: formAllowed) ?? value).replacingOccurrences(
                    of: " ", with: "+")
            ),
            ("base64", Data(value.utf8).base64EncodedString()),
        ]
    }
}

extension SecretScanner {
    /// `agent-reliability scan --secret VALUE... FILE...`: prints each hit; the exit code is 1 on any, 2 on
    /// bad arguments.
    package static func command(_ arguments: [String]) -> Int32 {
        var scanner = SecretScanner()
        var files: [String] = []
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            if argument == "--secret", let value = rest.popFirst() {
                scanner.add("secret", value)
            } else {
                files.append(argument)
            }
        }
        guard scanner.count > 0, !files.isEmpty else {
            FileHandle.standardError.write(
                Data("agent-reliability scan: give --secret VALUE (6 characters or more) and files to scan\n".utf8))
            return 2
        }
        var hits = 0
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                FileHandle.standardError.write(Data("agent-reliability scan: cannot read \(file)\n".utf8))
                return 2
            }
            for hit in scanner.scan([UInt8](data), source: file) {
                print(hit)
                hits += 1
            }
        }
        print("\(hits) secrets found in \(files.count) files (\(scanner.count) secrets)")
        return hits == 0 ? 0 : 1
    }
}
