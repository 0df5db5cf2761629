import Foundation
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The token values a test run hands out, kept so that the run's end can scan every store it left for them
/// (`agent-reliability scan-stores`). Only when `SMARTCAR_AUTH_TEST_EVIDENCE` names a folder (`Tests/all.sh` sets
/// it); the fake and the test harnesses record here, the product never does: the values are fake or made up.
package enum EvidenceValues {
    package static let variable = "SMARTCAR_AUTH_TEST_EVIDENCE"
    /// The file in the evidence folder: one JSON string per line, mode 0600.
    package static let fileName = "values"

    /// The evidence folder of this run, if it collects evidence.
    package static var folder: String? {
        guard let value = getenv(variable).map({ String(cString: $0) }), !value.isEmpty else { return nil }
        return value
    }

    /// Appends `values` (empty ones skipped) to the file in `folder` in one `write(2)` on an `O_APPEND` file, so that
    /// the test processes and agents of a run recording at once never interleave within a line.
    package static func record(_ values: [String], in folder: String? = EvidenceValues.folder) {
        guard let folder, !values.isEmpty else { return }
        let lines = values.filter { !$0.isEmpty }.map { JSONText.quoted($0) + "\n" }.joined()
        let fd = open(folder + "/" + fileName, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(lines.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }

    package static func record(_ values: String...) { record(values) }

    /// Every value recorded in `folder`, each once.
    package static func read(from folder: String) -> Set<String> {
        guard let text = try? String(contentsOfFile: folder + "/" + fileName, encoding: .utf8) else { return [] }
        let decoder = JSONDecoder()
        return Set(text.split(separator: "\n").compactMap { try? decoder.decode(String.self, from: Data($0.utf8)) })
    }
}
