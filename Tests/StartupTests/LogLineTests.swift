import AgentSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The agent's log lines start with an RFC 3339 timestamp that carries its offset.
@Suite struct LogLineTests {
    @Test func aLogLineStartsWithAnRFC3339TimestampWithItsOffset() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        Logger(level: .info, fd: fds[1]).notice("hello")
        close(fds[1])
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = read(fds[0], &bytes, bytes.count)
        let line = String(decoding: bytes[..<max(0, count)], as: UTF8.self)

        let pattern =
            #/^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(?:Z|[+-]\d{2}:\d{2})) NOTICE smartcar-auth-agent: hello\n$/#
        let match = try #require(line.wholeMatch(of: pattern), "\(line)")
        // A parser that needs the zone reads it back.
        _ = try Date(String(match.1), strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
