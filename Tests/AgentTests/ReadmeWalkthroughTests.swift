import AgentTestSupport
import Foundation
import Testing

/// The README's sandbox walkthrough, run as written (with the binary this build made), so it stays true.
@Suite struct ReadmeWalkthroughTests {
    static var readme: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)) ?? ""
    }

    /// The README's one-script sandbox walkthrough (fenced as bash: `coproc` needs bash 4), minus its build lines
    /// (the test already built the binary).
    static func walkthroughScript() -> String? {
        let blocks = readme.components(separatedBy: "```bash\n").dropFirst().map {
            $0.components(separatedBy: "```").first ?? ""
        }
        guard let script = blocks.first(where: { $0.contains("coproc AGENT") }) else { return nil }
        return script.split(separator: "\n").filter { !$0.hasPrefix("swift build") && !$0.hasPrefix("agent=") }.joined(
            separator: "\n")
    }

    @Test func theSandboxScriptWorksAsPasted() async throws {
        let script = try #require(Self.walkthroughScript(), "README.md has no sandbox script")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "set -e\n" + script]
        process.environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "agent": BinaryLocator.agent, "no_proxy": "127.0.0.1,localhost",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Read on a thread of its own, not the cooperative pool: an agent that a parallel test spawns at this
        // moment can inherit the pipe and hold it open until its own test, which needs the pool, is over.
        let text = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(
                    returning: String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
            }.start()
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2, "\(text)")
        #expect(lines.first?.contains(#""key":"my-car""#) == true, "\(text)")
        #expect(lines.last?.contains(#""accessToken":"#) == true, "\(text)")
        #expect(!text.contains(#""error""#), "\(text)")
    }
}
