import AgentTestSupport
import Foundation
import Testing
import WireFormats

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 16: the loopback port of a waiting `connect` is open to every program of the machine. Seeded hostile
/// bytes, stray requests and idle connections beyond the limit each get an answer or a close, never a crash,
/// and never end the flow: the browser's redirect still connects the key afterwards.
@Suite struct LoopbackConnectHostileTests {
    /// What the listener may answer a request that is not the redirect.
    static let refusals: Set<Int> = [400, 404, 405, 409, 431]

    static func hostileInput(_ random: inout SeededGenerator, port: UInt16) -> [UInt8] {
        let paths = ["/callback", "/favicon.ico", "/", "/callback/", "/CALLBACK", "//callback", "/callback%00"]
        let path = paths.randomElement(using: &random)!
        switch Int.random(in: 0..<8, using: &random) {
        case 0:
            return (0..<Int.random(in: 0..<4096, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 1:  // a request line far over the head limit
            return Array(
                "GET /callback?\(String(repeating: "a", count: Int.random(in: 8000..<40000, using: &random)))".utf8)
        case 2:  // the redirect path with a state of its own (a forged or stale redirect)
            return Array("GET \(path)?code=forged&state=\(random.next()) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        case 3:
            let method = ["POST", "PUT", "DELETE", "HEAD", "get", "OPTIONS"].randomElement(using: &random)!
            return Array("\(method) \(path) HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".utf8)
        case 4:  // a head cut off before its end
            return Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nX-Slow: ".utf8)
        case 5:  // header fields past the limit
            return Array("GET \(path) HTTP/1.1\r\n".utf8)
                + Array(repeating: Array("X-Filler: 0123456789abcdef\r\n".utf8), count: 600).flatMap { $0 }
                + Array("\r\n".utf8)
        case 6:  // control bytes and NULs inside a request line
            return Array("GET /call\0back?state=\u{7f} HTTP/1.1\r\n\r\n".utf8)
        default:  // noise around an empty line
            var bytes = (0..<Int.random(in: 1..<200, using: &random)).map { _ in
                UInt8.random(in: 32...126, using: &random)
            }
            bytes += Array("\r\n\r\n".utf8)
            return bytes
        }
    }

    @Test(arguments: [0x10AD_BEEF, 16, 0x5EED] as [UInt64])
    func hostileBytesNeverEndTheFlow(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let agent = try AgentProcess(arguments: ["--sandbox"])
        let announced = try await LoopbackConnectTests.startConnect(agent, id: 1)
        let port = try LoopbackConnectTests.port(of: announced["redirectURI"])
        // More idle connections than the listener keeps: the oldest make room for newer ones.
        let idle = try (0..<40).map { _ in try FakeBrowser.connected(port: port) }
        defer { for fd in idle { close(fd) } }
        for round in 0..<150 {
            let answer = try FakeBrowser.exchange(port: port, Self.hostileInput(&random, port: port))
            if answer.isEmpty { continue }  // closed without an answer: allowed
            let text = String(decoding: answer.prefix(12), as: UTF8.self)
            let status = Int(text.dropFirst("HTTP/1.1 ".count).prefix(3)) ?? 0
            #expect(
                text.hasPrefix("HTTP/1.1 ") && Self.refusals.contains(status), "seed \(seed) round \(round): \(text)")
            #expect(agent.isRunning, "seed \(seed) round \(round)")
        }
        #expect(agent.responses(id: 1).isEmpty, "a hostile request ended the flow")
        let page = try FakeBrowser.visit(try #require(announced["url"]?.stringValue))
        #expect(page.status == 200, "seed \(seed): \(page.head)")
        let result = try await agent.response(id: 1)
        #expect(result["result"]?["key"] == "car", "\(result)")
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }
}
