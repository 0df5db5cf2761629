import AgentTestSupport
import Foundation
import JSONRPC
import Testing

/// Malformed frames and JSON, mixed with valid requests, against the real binary: it never crashes, and
/// every valid request in the stream is answered.
@Suite struct RandomInputTests {
    /// Each piece of junk is built so that it cannot swallow the valid request that follows it: it ends
    /// with a newline (NDJSON junk) or is a complete, self-delimiting Content-Length frame.
    static func junk(_ random: inout SeededGenerator) -> [UInt8] {
        let valid = #"{"jsonrpc":"2.0","id":"x","method":"ping"}"#
        switch Int.random(in: 0..<12, using: &random) {
        case 0: return Array("{not json\n".utf8)
        case 1: return Array(#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#.utf8) + [10]
        case 2: return Array(#"{"jsonrpc":"1.0","id":-5,"method":"ping"}"#.utf8) + [10]
        case 3: return Array(#"{"jsonrpc":"2.0","id":-6,"method":42}"#.utf8) + [10]
        case 4: return Array(#"{"jsonrpc":"2.0","id":-7,"method":"getToken","params":{"key":5}}"#.utf8) + [10]
        case 5: return Array("[]\n".utf8)
        case 6: return Array("[1,2,3]\n".utf8)
        case 7:  // Invalid UTF-8 inside a string.
            return Array(#"{"jsonrpc":"2.0","id":-8,"method":""#.utf8) + [0xFF, 0xFE] + Array("\"}\n".utf8)
        case 8:  // A Content-Length frame whose body is not JSON.
            return Array("Content-Length: 5\r\n\r\nhello".utf8)
        case 9:  // Random bytes without CR or LF, then a newline.
            let count = Int.random(in: 1..<200, using: &random)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }.map {
                $0 == 10 || $0 == 13 ? 32 : $0
            }
            return [UInt8(ascii: "{")] + bytes + [10]
        case 10:  // A truncated valid message, ended by a newline.
            let cut = Int.random(in: 1..<valid.utf8.count, using: &random)
            return Array(valid.utf8.prefix(cut)) + [10]
        default:  // A Content-Length frame with a malformed header, then a blank line.
            return Array("Content-Length: abc\r\n\r\n".utf8)
        }
    }

    @Test func seededJunkNeverStopsValidRequestsFromBeingAnswered() async throws {
        var random = SeededGenerator(seed: 0x5EED_2026)
        let agent = try AgentProcess(arguments: ["--store", "memory"])
        var stream: [UInt8] = []
        var valid: [Int] = []
        for id in 1...3000 {
            if Bool.random(using: &random) { stream += Self.junk(&random) }
            valid.append(id)
            let request = Requests.request(id: id, "ping")
            if Int.random(in: 0..<4, using: &random) == 0 {
                stream += Array("Content-Length: \(request.utf8.count)\r\n\r\n\(request)".utf8)
            } else {
                stream += Array((request + "\n").utf8)
            }
        }
        agent.send(stream)
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
        for id in valid {
            #expect(agent.responses(id: id).count == 1, "valid request \(id) was not answered exactly once")
        }
        #expect(agent.inbox.violations.isEmpty)
    }
}
