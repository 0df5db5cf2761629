import FakeSmartcar
import Synchronization
import WireFormats

/// The captures of one scenario (`{{access_1}}` → its value), shared by the harness's thread and the
/// fake's connection threads. Every match or fill runs whole under the lock, so two of them never bind
/// the same name differently.
final class Bindings: Sendable {
    private let values: Mutex<[String: JSONValue]>

    init(_ initial: [String: JSONValue]) { values = Mutex(initial) }

    func with<T: Sendable>(_ body: (inout [String: JSONValue]) -> T) -> T {
        values.withLock { body(&$0) }
    }

    /// Records the values bound to token names (`access_1`, `refresh_2`, `app_1`, `code_1`) for the test run's
    /// scan of its stores (`EvidenceValues`): a transcript makes most of them up.
    func recordTokens() {
        let prefixes = ["access_", "refresh_", "app_", "code_"]
        EvidenceValues.record(
            with { values in
                values.compactMap { name, value in prefixes.contains { name.hasPrefix($0) } ? value.stringValue : nil }
            })
    }

    /// Fills a pattern to send (see `Filler`).
    func fill(_ pattern: JSONValue) -> Result<JSONValue, Filler.Failure> {
        with { values in
            Result { () throws(Filler.Failure) -> JSONValue in try Filler.fill(pattern, bindings: &values) }
        }
    }

    func fillString(_ text: String, path: String) -> Result<String, Filler.Failure> {
        with { values in
            Result { () throws(Filler.Failure) -> String in try Filler.fillString(text, path: path, bindings: &values) }
        }
    }

    /// Matches `actual` against `pattern` (see `Matcher`), binding the captures on success.
    func match(_ pattern: JSONValue, _ actual: JSONValue, path: String = "$") -> Mismatch? {
        with { values in Matcher.match(pattern, actual, path: path, bindings: &values) }
    }
}
