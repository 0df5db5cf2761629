import Testing
@testable import JSONRPC

/// Error answers: each goes to the right id.
@Suite(.timeLimit(.minutes(1))) struct ConnectionErrorTests {
    private func replies(to input: [UInt8], maxMessageBytes: Int = 4 << 20) async -> [RequestID: Reply] {
        let harness = PipeHarness(maxMessageBytes: maxMessageBytes)
        harness.send(input)
        let all = await harness.runToEnd(TestHandler())
        return Dictionary(all.map { ($0.id ?? .null, $0) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func protocolErrorsGoToTheirIDs() async {
        let bodies = [
            #"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"#,           // -32700, id recovered
            #"{"jsonrpc":"1.0","id":2,"method":"echo"}"#,                      // -32600
            #"{"jsonrpc":"2.0","id":3,"method":4}"#,                           // -32600
            #"{"jsonrpc":"2.0","id":4,"method":"nope"}"#,                      // -32601
            #"{"jsonrpc":"2.0","id":5,"method":"add","params":{"a":"x","b":1}}"#,  // -32602
            #"{"jsonrpc":"2.0","id":6,"method":"add","params":{"a":1}}"#,      // -32602
            #"{"jsonrpc":"2.0","id":7,"method":"fail"}"#,                      // -32603
            #"{"jsonrpc":"2.0","id":8,"method":"add","params":{"a":1,"b":2}}"#,
        ]
        let byID = await replies(to: bodies.flatMap { Frames.framed($0) })
        #expect(byID.count == 8)
        #expect(byID[.number(1)]?.errorCode == -32700)
        #expect(byID[.number(2)]?.errorCode == -32600)
        #expect(byID[.number(3)]?.errorCode == -32600)
        #expect(byID[.number(4)]?.errorCode == -32601)
        #expect(byID[.number(4)]?.errorMessage == "unknown method 'nope'")
        #expect(byID[.number(5)]?.errorMessage == "invalid params: 'a' must be a number")
        #expect(byID[.number(6)]?.errorMessage == "invalid params: missing required field 'b'")
        #expect(byID[.number(7)]?.errorCode == -32603)
        #expect(byID[.number(7)]?.errorMessage == "internal error")
        #expect(byID[.number(8)]?.result == .int(3))
    }

    @Test func unparseableWithoutIDAnswersNull() async {
        let byID = await replies(to: Frames.line("{not json") + Frames.line(Frames.request(1)))
        #expect(byID[.null]?.errorCode == -32700)
        #expect(byID[.number(1)]?["result"] == .null)
    }

    @Test func framingProblemsAreAnsweredToTheRecoveredID() async {
        let big = #"{"jsonrpc":"2.0","id":"big","method":"echo","params":"\#(String(repeating: "x", count: 5000))"}"#
        let input = Frames.framed(big) + Array("Content-Length: x\r\n\r\n\(Frames.request(2))".utf8) + Frames.framed(Frames.request(3))
        let byID = await replies(to: input, maxMessageBytes: 1000)
        #expect(byID.count == 3)
        #expect(byID[.string("big")]?.errorMessage == "invalid request: message too large")
        #expect(byID[.number(2)]?.errorCode == -32600)
        #expect(byID[.number(3)]?["result"] == .null)
    }

    @Test func truncatedFinalMessageIsAnsweredAtEndOfInput() async {
        let byID = await replies(to: Array("Content-Length: 90\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":9,".utf8))
        #expect(byID[.number(9)]?.errorCode == -32700)
    }

    @Test func duplicateInFlightIDIsRejectedAndUnknownCancelIgnored() async {
        let harness = PipeHarness()
        let handler = TestHandler()
        let run = Task { await harness.connection.run(handler: handler) }
        harness.sendFramed([Frames.request(1, method: "park")])
        await handler.gate.arrivals(1)
        harness.sendFramed([Frames.request(1, method: "echo"), Frames.notification("$/cancelRequest", params: #"{"id":999}"#), Frames.request(2)])
        let first = await harness.replies.wait(for: 2)
        #expect(first.first { $0.id == .number(1) }?.errorMessage == "invalid request: id 1 is already in flight")
        #expect(first.contains { $0.id == .number(2) })
        handler.gate.open()
        harness.closeInput()
        await run.value
        let replies = await harness.finish()
        #expect(replies.count == 3)
        #expect(replies.last?.result == .string("late"))
    }
}
