import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A private temporary folder (mode 0700, as the token store asks of its folder), removed with everything in
/// it when the value goes away, so a test run leaves nothing behind (its store files are first kept as the run's
/// evidence when it collects some: `TestEvidence`).
package final class TemporaryFolder: Sendable {
    package let path: String

    /// `purpose` names the folder (`<purpose>-XXXXXX` in the system's temporary folder), for a reader of `ls`.
    package init(_ purpose: String = "agent-test") throws {
        var template = Array((FileManager.default.temporaryDirectory.path + "/\(purpose)-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: String(cString: strerror(errno))])
        }
        path = String(cString: made)
    }

    deinit {
        TestEvidence.keepStoreFiles(of: path)
        try? FileManager.default.removeItem(atPath: path)
    }

    package var url: URL { URL(fileURLWithPath: path) }

    /// The path of `name` inside the folder.
    package func file(_ name: String) -> String { path + "/" + name }
}
