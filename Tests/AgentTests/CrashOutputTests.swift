import AgentTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A crash ends the agent with one line on stderr, never Swift's crash report (which prints the memory
/// registers point at, where a token may be).
@Suite struct CrashOutputTests {
    @Test(arguments: [SIGSEGV, SIGQUIT, SIGABRT, SIGBUS])
    func aCrashSaysOneLineAndEndsTheProcess(signal: Int32) async throws {
        let agent = try AgentProcess(arguments: ["--store", "memory"])
        let secret = "access-token-that-must-not-leak-4711"
        let stored = try await agent.call(
            id: 1, "storeToken",
            [
                "key": "car", "accessToken": .string(secret), "refreshToken": "refresh-token-that-must-not-leak-4711",
                "expiresAt": "2030-01-01T00:00:00Z",
            ])
        #expect(stored["result"] != nil)
        kill(agent.pid, signal)
        #expect(try await agent.waitForExit() == signal)
        #expect(agent.termination?.signalled == true)
        let stderr = agent.stderr
        #expect(stderr.contains("smartcar-auth-agent: crashed (fatal signal)"), "\(stderr)")
        #expect(!stderr.contains("Program crashed") && !stderr.contains("Registers"), "\(stderr)")
        #expect(!stderr.contains("must-not-leak"))
    }
}
