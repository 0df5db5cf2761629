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

    /// The README's first `sh` or `bash` block holding `marker`, minus its build lines (the test already built the
    /// binary). The one-script sandbox walkthrough is fenced as bash: `coproc` needs bash 4.
    static func script(holding marker: String) -> String? {
        let blocks = readme.components(separatedBy: "```").enumerated().filter { $0.offset % 2 == 1 }.compactMap {
            block -> String? in
            let text = block.element
            guard text.hasPrefix("sh\n") || text.hasPrefix("bash\n") else { return nil }
            return String(text.drop { $0 != "\n" }.dropFirst())
        }
        guard let script = blocks.first(where: { $0.contains(marker) }) else { return nil }
        return script.split(separator: "\n").filter { !$0.hasPrefix("swift build") && !$0.hasPrefix("agent=") }.joined(
            separator: "\n")
    }

    /// Runs `script` with bash (`set -e`, `$agent` the binary this build made); its exit status and stdout.
    static func run(_ script: String) async throws -> (status: Int32, output: String) {
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
        return (process.terminationStatus, text)
    }

    @Test func theSandboxScriptWorksAsPasted() async throws {
        let script = try #require(Self.script(holding: "coproc AGENT"), "README.md has no sandbox script")
        let (status, text) = try await Self.run(script)
        #expect(status == 0)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2, "\(text)")
        #expect(lines.first?.contains(#""key":"my-car""#) == true, "\(text)")
        #expect(lines.last?.contains(#""accessToken":"#) == true, "\(text)")
        #expect(!text.contains(#""error""#), "\(text)")
    }

    /// "Connect a vehicle from a terminal": the sandbox script, a curl playing the browser.
    @Test func theConnectScriptWorksAsPasted() async throws {
        let script = try #require(Self.script(holding: #""method":"connect""#), "README.md has no connect script")
        let (status, text) = try await Self.run(script)
        #expect(status == 0)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2, "\(text)")
        #expect(
            lines.first?.contains("Connected: the vehicle&#39;s access is stored under the key &#39;my-car&#39;")
                == true)
        #expect(lines.last?.contains(#""key":"my-car""#) == true, "\(text)")
        #expect(lines.last?.contains(#""accessToken":"#) == true, "\(text)")
    }
}
