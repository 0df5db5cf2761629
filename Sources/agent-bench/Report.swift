import Foundation

/// One line of the result table; also one record of the JSON output.
struct Row: Codable, Sendable {
    enum Verdict: String, Codable, Sendable {
        /// A speed or size target reached / not reached (never fails the run).
        case met, missed
        /// A hard invariant held / broke (a break makes the bench exit 1).
        case ok, fail = "FAIL"
    }

    /// A stable name for scripts, e.g. `roundTrip.median`.
    var id: String
    /// What a person reads, unit included.
    var measure: String
    var unit: String
    /// The agent on its SQLite store (the default store).
    var agent: Double?
    /// The agent on PostgreSQL, in runs given `--store postgresql://…` or `--postgres`.
    var postgres: Double?
    var peer: Double?
    var floor: Double?
    /// Shown instead of a missing peer number (e.g. `skipped`, `not run`).
    var peerNote: String?
    /// Shown instead of a missing PostgreSQL number, in runs with PostgreSQL.
    var postgresNote: String?
    var ratio: String?
    var target: String?
    var verdict: Verdict?
}

/// Everything the bench found, printed as one table and optionally written as JSON.
struct Report: Codable, Sendable {
    struct Machine: Codable, Sendable {
        var cores: Int
        var kernel: String
        var loadAverageAtStart: [Double]
        var loadAverageAtEnd: [Double]
    }

    struct Peer: Codable, Sendable {
        var ran: Bool
        var python: String?
        var script: String?
        var skipped: String?
    }

    struct Settings: Codable, Sendable {
        var quick: Bool
        var stormKeys: Int
        var stormConcurrency: Int
        var latencyMilliseconds: Int
        var singleFlightCallers: Int
        var storeSizes: [Int]
        /// The PostgreSQL server compared with SQLite (its URI without the password), if any.
        var postgres: String?
    }

    var generatedAt: String
    var agentPath: String
    var agentVersion: String
    var machine: Machine
    var peer: Peer
    var settings: Settings
    var rows: [Row] = []
    var durationSeconds: Double = 0

    var invariantsHeld: Bool { !rows.contains { $0.verdict == .fail } }

    mutating func add(_ row: Row) { rows.append(row) }

    // MARK: Table

    /// With PostgreSQL in the run, the agent's column is headed SQLite and a PostgreSQL column follows it.
    func table() -> String {
        let compared = settings.postgres != nil
        let header =
            ["measure"] + (compared ? ["SQLite", "PostgreSQL"] : ["agent"]) + [
                "peer", "floor", "ratio", "target", "verdict",
            ]
        let body = rows.map { row in
            [row.measure, Report.format(row.agent, row.unit) ?? "—"]
                + (compared ? [Report.format(row.postgres, row.unit) ?? row.postgresNote ?? "—"] : [])
                + [
                    Report.format(row.peer, row.unit) ?? row.peerNote ?? "—",
                    Report.format(row.floor, row.unit) ?? "",
                    row.ratio ?? "", row.target ?? "", row.verdict?.rawValue ?? "",
                ]
        }
        let numbers = compared ? 5 : 4
        let widths = header.indices.map { column in ([header] + body).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            "| "
                + cells.enumerated().map { column, cell in
                    let pad = String(repeating: " ", count: widths[column] - cell.count)
                    return column == 0 || column >= numbers ? cell + pad : pad + cell
                }.joined(separator: " | ") + " |"
        }
        let rule =
            "|"
            + widths.enumerated().map { column, width in
                column == 0 || column >= numbers
                    ? String(repeating: "-", count: width + 2) : String(repeating: "-", count: width + 1) + ":"
            }.joined(separator: "|") + "|"
        return ([line(header), rule] + body.map(line)).joined(separator: "\n")
    }

    /// Numbers the way a person compares them: µs with 2 decimals, ms with 1–2, rates and counts grouped.
    static func format(_ value: Double?, _ unit: String) -> String? {
        guard let value, value.isFinite else { return nil }
        switch unit {
        case "µs", "s", "ratio": return String(format: "%.2f", value)
        case "ms": return String(format: value < 10 ? "%.2f" : value < 1000 ? "%.1f" : "%.0f", value)
        case "B/key": return value < 100 ? String(format: "%.1f", value) : grouped(value)
        default: return grouped(value)
        }
    }

    static func grouped(_ value: Double) -> String {
        let digits = String(Int(value.rounded()))
        var out = ""
        for (index, character) in digits.reversed().enumerated() {
            if index > 0 && index % 3 == 0 && character != "-" { out.append(",") }
            out.append(character)
        }
        return String(out.reversed())
    }

    // MARK: JSON

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(JSONShape(report: self))
    }

    /// The report plus the derived `invariantsHeld`, as written.
    private struct JSONShape: Encodable {
        let report: Report
        func encode(to encoder: any Encoder) throws {
            try report.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(report.invariantsHeld, forKey: .invariantsHeld)
        }
        enum Key: String, CodingKey { case invariantsHeld }
    }
}
