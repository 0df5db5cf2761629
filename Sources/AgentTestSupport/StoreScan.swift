import FakeSmartcar
import Foundation

/// Issue 15's first proof: every store a test run left (the SQLite files and the PostgreSQL dumps `TestEvidence`
/// kept) holds none of the token values the run handed out, in any form and as no 16 consecutive bytes of one
/// (`SecretScanner`). Stores a test marked as plaintext on purpose are scanned apart: their hits are shown, as the
/// proof that the scan finds plaintext, and do not fail it.
package struct StoreScan {
    package struct Figures {
        package var values = 0
        /// Values shorter than `minimumLength`: not searched.
        package var unsearchable = 0
        package var files = 0
        package var bytes = 0
        /// Scanned files by kind (database, WAL, SHM, journal, PostgreSQL dump).
        package var kinds: [String: Int] = [:]
        package var hits: [SecretScanner.Hit] = []
        package var excludedFiles = 0
        package var excludedHits = 0
        /// Excluded files by the reason their test gave.
        package var reasons: [String: Int] = [:]
        package var clustersStarted = 0
        /// Clusters that stopped without a dump, and dumps that failed (with why).
        package var missingDumps: [String] = []

        package var passed: Bool { hits.isEmpty && missingDumps.isEmpty && values > 0 && files > 0 }
    }

    /// Shorter values are not searched: a 6-character one turns up by chance in the random hex of key names and
    /// client ids (seen: 2 such hits in a run); at 8, 16^8 combinations make that unlikely.
    package static let minimumLength = 8

    /// Scans the evidence folder `evidence` (see `TestEvidence`).
    package static func scan(_ evidence: String) -> Figures {
        var figures = Figures()
        var scanner = SecretScanner()
        for value in EvidenceValues.read(from: evidence) {
            guard value.count >= minimumLength else {
                figures.unsearchable += 1
                continue
            }
            scanner.add("token value", value)
        }
        figures.values = scanner.count
        let manager = FileManager.default
        let stores = evidence + "/" + TestEvidence.stores
        for relative in (manager.subpaths(atPath: stores) ?? []).sorted() where isFile(stores + "/" + relative) {
            scan(stores + "/" + relative, kind: kind(of: relative), with: scanner, into: &figures)
        }
        let excluded = evidence + "/" + TestEvidence.excluded
        for folder in (try? manager.contentsOfDirectory(atPath: excluded)) ?? [] {
            let path = excluded + "/" + folder
            let reason =
                (try? String(contentsOfFile: path + "/" + TestEvidence.exclusionReason, encoding: .utf8))
                ?? "no reason"
            for relative in manager.subpaths(atPath: path) ?? []
            where relative != TestEvidence.exclusionReason && isFile(path + "/" + relative) {
                let bytes = [UInt8](manager.contents(atPath: path + "/" + relative) ?? Data())
                figures.excludedFiles += 1
                figures.reasons[reason, default: 0] += 1
                figures.excludedHits += scanner.scan(bytes, source: relative).count
            }
        }
        let postgres = evidence + "/" + TestEvidence.postgres
        for name in ((try? manager.contentsOfDirectory(atPath: postgres)) ?? []).sorted()
        where name.hasSuffix(".started") {
            figures.clustersStarted += 1
            let cluster = postgres + "/" + name.dropLast(".started".count)
            if isFile(cluster + ".sql") {
                scan(cluster + ".sql", kind: "PostgreSQL dump", with: scanner, into: &figures)
            } else {
                let why = (try? String(contentsOfFile: cluster + ".failed", encoding: .utf8)) ?? "no dump was taken"
                figures.missingDumps.append("\((cluster as NSString).lastPathComponent): \(why)")
            }
        }
        return figures
    }

    private static func scan(_ path: String, kind: String, with scanner: SecretScanner, into figures: inout Figures) {
        let bytes = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
        figures.files += 1
        figures.bytes += bytes.count
        figures.kinds[kind, default: 0] += 1
        figures.hits += scanner.scan(bytes, source: path)
    }

    private static func kind(of name: String) -> String {
        if name.hasSuffix("-wal") { return "WAL" }
        if name.hasSuffix("-shm") { return "SHM" }
        if name.hasSuffix("-journal") { return "journal" }
        return name.contains(".corrupt-") ? "database moved aside" : "database"
    }

    private static func isFile(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && !isFolder.boolValue
    }

    /// The figures as `scan-stores` prints them, hits first (at most `shownHits` of them), PASS or FAIL last.
    package static func report(_ figures: Figures, shownHits: Int = 20) -> [String] {
        var lines = figures.hits.prefix(shownHits).map { "hit: \($0)" }
        if figures.hits.count > shownHits { lines.append("… and \(figures.hits.count - shownHits) more hits") }
        // By file, folder names first: the test that made a store is named by its folder (`TemporaryFolder`).
        let byFile = Dictionary(grouping: figures.hits, by: \.source).mapValues(\.count)
        lines += byFile.sorted { $0.key < $1.key }.map { "hits in \($0.key): \($0.value)" }
        lines += figures.missingDumps.map { "no dump of cluster \($0)" }
        let kinds = figures.kinds.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        lines.append(
            "values: \(figures.values) token values searched in every form and as every 16-byte fragment"
                + " (\(figures.unsearchable) shorter than \(minimumLength) characters not searched)")
        lines.append(
            "scanned: \(figures.files) files, \(figures.bytes) bytes (\(kinds.isEmpty ? "none" : kinds));"
                + " PostgreSQL clusters: \(figures.clustersStarted) started, \(figures.missingDumps.count) without a dump"
        )
        lines.append(
            "excluded: \(figures.excludedFiles) files (plaintext on purpose), \(figures.excludedHits) hits there"
                + (figures.reasons.isEmpty ? "" : ": ")
                + figures.reasons.sorted { $0.key < $1.key }.map { "\($0.value) files: \($0.key)" }.joined(
                    separator: "; "))
        lines.append("hits: \(figures.hits.count)")
        lines.append(figures.passed ? "PASS" : "FAIL")
        return lines
    }

    /// `agent-reliability scan-stores EVIDENCE-FOLDER`: exit code 0 on PASS, 1 on FAIL, 2 on bad arguments.
    package static func command(_ arguments: [String]) -> Int32 {
        guard arguments.count == 1 else {
            FileHandle.standardError.write(Data("agent-reliability scan-stores: give the evidence folder\n".utf8))
            return 2
        }
        let figures = scan(arguments[0])
        for line in report(figures) { print("scan-stores: \(line)") }
        return figures.passed ? 0 : 1
    }
}
