import AgentTestSupport
import Foundation

/// What one suite measured and what went wrong: figures to print, failures with readable reasons.
final class Report {
    let suite: String
    private(set) var figures: [(name: String, value: String)] = []
    private(set) var failures: [String] = []
    private let started = ContinuousClock.now

    init(suite: String) { self.suite = suite }

    var passed: Bool { failures.isEmpty }

    func figure(_ name: String, _ value: some CustomStringConvertible) { figures.append((name, value.description)) }

    func fail(_ reason: String) { failures.append(reason) }

    /// Records `reason` unless `condition` holds; returns `condition`.
    @discardableResult
    func check(_ condition: Bool, _ reason: @autoclosure () -> String) -> Bool {
        if !condition { fail(reason()) }
        return condition
    }

    /// Counts of outcomes ("result", error kinds) as one figure, most frequent first.
    func counts(_ name: String, _ tally: [String: Int]) {
        let text = tally.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map {
            "\($0.key) \($0.value)"
        }.joined(separator: ", ")
        figure(name, text.isEmpty ? "none" : text)
    }

    func printed() -> String {
        let seconds =
            Double((ContinuousClock.now - started).components.attoseconds) * 1e-18
            + Double((ContinuousClock.now - started).components.seconds)
        var lines = ["== \(suite) =="]
        let width = max(24, (figures.map(\.name.count).max() ?? 0) + 2)
        for (name, value) in figures + [("duration", String(format: "%.1f s", seconds))] {
            lines.append("  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + value)
        }
        for failure in failures.prefix(25) { lines.append("  FAILURE: \(failure)") }
        if failures.count > 25 { lines.append("  … and \(failures.count - 25) more failures") }
        lines.append("\(passed ? "PASS" : "FAIL") \(suite)")
        return lines.joined(separator: "\n")
    }
}
