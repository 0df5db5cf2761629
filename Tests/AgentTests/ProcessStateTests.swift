import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The real binary's process state: started without a standard descriptor, with core dumps allowed, and
/// watching a parent that is a zombie.
@Suite struct ProcessStateTests {
    /// `2>&-`: log lines must go to /dev/null, never to stdout, whatever is logged. Every byte of stdout is a
    /// JSON-RPC message.
    @Test func aClosedStderrNeverSendsLogLinesToStdout() async throws {
        let agent = try AgentProcess(
            binary: "/bin/sh",
            arguments: [
                "-c", #"exec "$0" "$@" 2>&-"#, BinaryLocator.agent, "--store", "memory", "--log-level", "debug",
            ],
            keepRawOutput: true)
        _ = try await agent.call(id: 1, "initialize", ["clientInfo": ["name": "closed-stderr-test"]])
        _ = try await agent.call(id: 2, "getToken", ["key": "nobody"])
        _ = try await agent.call(id: 3, "ping")
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
        #expect(agent.inbox.violations.isEmpty, "not messages on stdout: \(agent.inbox.violations)")
        let lines = String(decoding: agent.rawOutput, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 3)
        for line in lines {
            #expect(line.hasPrefix("{\"jsonrpc\""), "not a message on stdout: \(line.prefix(200))")
        }
    }

    /// `ulimit -c unlimited` and a fatal signal: the agent has set its core limit to 0, and no core file
    /// appears in its working folder.
    @Test(arguments: [SIGABRT, SIGSEGV, SIGQUIT])
    func aCrashWritesNoCoreFile(signal: Int32) async throws {
        let folder = try TemporaryFolder("core-test")
        let script =
            #"cd "$1" || exit 9; ulimit -S -c unlimited 2>/dev/null || ulimit -S -c "$(ulimit -H -c)"; "#
            + #"shift; exec "$0" "$@""#
        let agent = try AgentProcess(
            binary: "/bin/sh", arguments: ["-c", script, BinaryLocator.agent, folder.url.path, "--store", "memory"])
        _ = try await agent.call(
            id: 1, "storeToken",
            ["key": "car", "accessToken": "at-core", "refreshToken": "rt-core", "expiresAt": "2030-01-01T00:00:00Z"])
        #if os(Linux)
            let limits = try String(contentsOfFile: "/proc/\(agent.pid)/limits", encoding: .utf8)
            let core = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") })
            let fields = core.split(separator: " ", omittingEmptySubsequences: true)
            // "Max core file size <soft> <hard> bytes"
            #expect(fields.count >= 6 && fields[4] == "0", "\(core)")
        #endif
        kill(agent.pid, signal)
        #expect(try await agent.waitForExit() == signal)
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.url.path)
        #expect(left.filter { $0.hasPrefix("core") }.isEmpty, "core files: \(left)")
    }

    /// The agent is not dumpable (`PR_SET_DUMPABLE` 0). Observable from outside: the kernel makes a
    /// non-dumpable process's /proc files root's. Run as another user than root (as root, through
    /// `setpriv` as `nobody`), so that a dumpable agent's /proc files would be that user's.
    @Test func theAgentIsNotDumpable() async throws {
        #if os(Linux)
            var binary = BinaryLocator.agent
            var arguments = ["--store", "memory"]
            let folder = try TemporaryFolder("dumpable-test")
            if getuid() == 0 {
                guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { return }
                // A copy `nobody` can run: the build folder may be closed to it. Made by `cp`, not in this process:
                // a child another test spawns meanwhile would inherit this process's descriptor of the copy
                // open for writing, and running the copy would then fail with "Text file busy".
                let copy = folder.file("smartcar-auth-agent")
                let source = binary
                let copied = try await onOwnThread {
                    let cp = try Process.run(URL(fileURLWithPath: "/bin/cp"), arguments: [source, copy])
                    cp.waitUntilExit()
                    return cp.terminationStatus
                }
                try #require(copied == 0, "cp \(source) \(copy) failed")
                chmod(folder.url.path, 0o755)
                chmod(copy, 0o755)
                arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", copy] + arguments
                binary = "/usr/bin/setpriv"
            }
            let agent = try AgentProcess(binary: binary, arguments: arguments)
            #expect(try await agent.call(id: 1, "ping")["result"] != nil)
            let status = try String(contentsOfFile: "/proc/\(agent.pid)/status", encoding: .utf8)
            let uid = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?
                .split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { UInt32($0) }
            #expect(uid != nil && uid != 0, "the agent runs as root: nothing to observe (\(String(describing: uid)))")
            var info = stat()
            #expect(stat("/proc/\(agent.pid)/status", &info) == 0)
            #expect(info.st_uid == 0, "/proc/\(agent.pid)/status belongs to \(info.st_uid): the agent is dumpable")
            agent.closeInput()
            #expect(try await agent.waitForExit() == 0)
        #endif
    }

    /// A zombie parent (exited, not yet reaped) counts as gone: the agent ends as at end of input.
    @Test func aZombieProcessIdCountsAsGone() async throws {
        #if os(Linux)
            let zombie = try spawnExited()
            defer {
                var status: Int32 = 0
                _ = waitpid(zombie, &status, 0)
            }
            let agent = try AgentProcess(arguments: ["--store", "memory"])
            let reply = try await agent.call(id: 1, "initialize", ["processId": .int(Int64(zombie))])
            #expect(reply["result"] != nil)
            #expect(try await agent.waitForExit() == 0)
            #expect(agent.stderr.contains("process \(zombie) that started this agent is gone"))
        #endif
    }

    @Test(arguments: [0, -1, 1, -2_147_483_648, 2_147_483_648, 1e12] as [Double])
    func anInvalidProcessIdIsRefused(pid: Double) async throws {
        let agent = try AgentProcess(arguments: ["--store", "memory"])
        let processId: JSONValue = pid.rounded() == pid && abs(pid) < 1e15 ? .int(Int64(pid)) : .double(pid)
        let reply = try await agent.call(id: 1, "initialize", ["processId": processId])
        #expect(reply.errorCode == -32602, "\(reply)")
        #expect(reply["error"]?["message"]?.stringValue?.contains("processId") == true)
        // Refused, so not initialized: a good initialize still works.
        let again = try await agent.call(id: 2, "initialize", ["processId": .int(Int64(getpid()))])
        #expect(again["result"] != nil)
    }

    /// Starts `/bin/true` and waits until it has exited, without reaping it: a zombie until `waitpid`.
    private func spawnExited() throws -> pid_t {
        var pid: pid_t = 0
        let argv = [strdup("/bin/true"), nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, "/bin/true", nil, nil, argv, environ) == 0 else {
            throw AgentProcess.Failure("posix_spawn /bin/true failed")
        }
        #if os(Linux)
            var info = siginfo_t()
            // WNOWAIT: wait for the exit but leave the child a zombie.
            guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == 0 else {
                throw AgentProcess.Failure("waitid failed: \(errno)")
            }
        #endif
        return pid
    }
}
