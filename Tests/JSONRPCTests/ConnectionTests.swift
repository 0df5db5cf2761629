import AgentSupport
import Testing
@testable import JSONRPC

/// The connection over real pipes: dispatch, batches, cancellation and shutdown.
@Suite(.timeLimit(.minutes(1))) struct ConnectionTests {
    private func ids(_ range: ClosedRange<Int>) -> Set<RequestID> { Set(range.map { .number(Int64($0)) }) }

    @Test func tenThousandPipelinedRequestsAreEachAnsweredOnce() async {
        let harness = PipeHarness()
        harness.sendFramed((0..<10_000).map { Frames.request($0, method: "add", params: #"{"a":\#($0),"b":1}"#) })
        let replies = await harness.runToEnd(TestHandler())
        #expect(replies.count == 10_000)
        #expect(Set(replies.compactMap(\.id)) == ids(0...9_999))
        #expect(replies.allSatisfy { reply in
            if case .number(let n) = reply.id { reply.result == .int(n + 1) } else { false }
        })
        #expect(harness.replies.styles == [.contentLength])
        #expect(harness.connection.requestsServed == 10_000)
        #expect(harness.connection.inFlightCount == 0)
    }

    @Test func answersInTheStyleOfTheFirstMessage() async {
        let harness = PipeHarness()
        harness.send(Frames.line(Frames.request(1)) + Frames.framed(Frames.request(2, method: "notify")))
        let replies = await harness.runToEnd(TestHandler())
        #expect(replies.count == 3)
        #expect(replies.contains { $0["method"] == "test/notified" })
        #expect(harness.replies.styles == [.newlineDelimited])
    }

    @Test func batchOfAHundredGetsOneArray() async {
        let harness = PipeHarness()
        harness.send("[" + (0..<100).map { Frames.request($0, method: "add", params: #"{"a":\#($0),"b":1}"#) }.joined(separator: ",") + "]")
        let replies = await harness.runToEnd(TestHandler())
        #expect(replies.count == 1)
        let elements = replies.first?.elements ?? []
        #expect(elements.count == 100)
        #expect(Set(elements.compactMap(\.id)) == ids(0...99))
        #expect(elements.allSatisfy { element in
            if case .number(let n) = element.id { element["result"] == .int(n + 1) } else { false }
        })
    }

    @Test func emptyBatchIsOneInvalidRequest() async {
        let harness = PipeHarness()
        harness.send("[]\n")
        let replies = await harness.runToEnd(TestHandler())
        #expect(replies.map(\.value) == [["jsonrpc": "2.0", "id": nil, "error": ["code": -32600, "message": "invalid request: empty batch"]]])
    }

    @Test func allNotificationBatchGetsNoReply() async {
        let harness = PipeHarness()
        let handler = TestHandler()
        let run = Task { await harness.connection.run(handler: handler) }
        harness.send("[\(Frames.notification("a")),\(Frames.notification("b")),\(Frames.notification("c"))]\n")
        harness.send(Frames.line(Frames.request(5)))
        let first = await harness.replies.reply(0)
        #expect(first?.id == .number(5))
        harness.closeInput()
        await run.value
        let replies = await harness.finish()
        #expect(replies.count == 1)
        #expect(handler.notifications.all.sorted() == ["a", "b", "c"])
    }

    @Test func mixedBatchAnswersRequestsAndInvalidElementsOnly() async {
        let harness = PipeHarness()
        harness.send("[\(Frames.request(1)), \(Frames.notification("n")), 7, {\"jsonrpc\":\"2.0\",\"id\":2}]\n")
        let replies = await harness.runToEnd(TestHandler())
        let elements = replies.first?.elements ?? []
        #expect(replies.count == 1)
        #expect(elements.count == 3)
        #expect(elements.first?.id == .number(1) && elements.first?["result"] == .null)
        #expect(elements.dropFirst().first?.id == .null && elements.dropFirst().first?.errorCode == -32600)
        #expect(elements.last?.id == .number(2) && elements.last?.errorCode == -32600)
    }

    @Test func blockedRequestDoesNotHoldUpOthersAndCanBeCancelled() async {
        let harness = PipeHarness()
        let handler = TestHandler()
        let run = Task { await harness.connection.run(handler: handler) }
        harness.sendFramed([Frames.request(0, method: "park")] + (1...1000).map { Frames.request($0) })
        let first = await harness.replies.wait(for: 1000)
        #expect(first.count == 1000)
        #expect(Set(first.compactMap(\.id)) == ids(1...1000))
        #expect(harness.connection.inFlightCount == 1)

        harness.sendFramed([Frames.notification("$/cancelRequest", params: #"{"id":0}"#)])
        let cancelled = await harness.replies.reply(1000)
        #expect(cancelled?.id == .number(0))
        #expect(cancelled?.errorCode == -32800)
        #expect(harness.connection.inFlightCount == 0)

        handler.gate.open()  // the handler now returns "late": that result must be dropped
        harness.sendFramed((1001...1100).map { Frames.request($0) })
        harness.closeInput()
        await run.value
        let replies = await harness.finish()
        #expect(replies.count == 1101)
        #expect(replies.filter { $0.id == .number(0) }.count == 1)
        #expect(!replies.contains { $0.result == .string("late") })
    }

    @Test func cancellingASleepingRequestWhileOthersFlow() async {
        let harness = PipeHarness()
        let handler = TestHandler()
        let run = Task { await harness.connection.run(handler: handler) }
        harness.sendFramed([Frames.request(1, method: "sleep")])
        await handler.gate.arrivals(1)
        harness.sendFramed([Frames.request(2), Frames.notification("$/cancelRequest", params: #"{"id":1}"#), Frames.request(3)])
        harness.closeInput()
        await run.value
        let replies = await harness.finish()
        #expect(replies.count == 3)
        #expect(replies.first { $0.id == .number(1) }?.errorCode == -32800)
        #expect(Set(replies.compactMap(\.id)) == ids(1...3))
    }

    @Test func endOfInputWithRequestsInFlightStillAnswersThem() async {
        let handler = TestHandler()
        // Open the gate only once the connection has seen the end of input.
        let logger = Logger(level: .debug) { _, line in
            if line.hasPrefix("input ended") { handler.gate.open() }
        }
        let harness = PipeHarness(logger: logger)
        let run = Task { await harness.connection.run(handler: handler) }
        harness.sendFramed((1...20).map { Frames.request($0, method: "park") })
        await handler.gate.arrivals(20)
        harness.closeInput()
        await run.value
        let replies = await harness.finish()
        #expect(replies.count == 20)
        #expect(replies.allSatisfy { $0.result == .string("late") })
    }

    @Test func cancelAllAnswersEveryRequestAndReturnsWithoutEndOfInput() async {
        let harness = PipeHarness()
        let handler = TestHandler()
        let run = Task { await harness.connection.run(handler: handler) }
        harness.sendFramed((1...5).map { Frames.request($0, method: "sleep") } + (6...10).map { Frames.request($0, method: "park") })
        await handler.gate.arrivals(10)
        harness.connection.cancelAll()
        await run.value  // returns although the input is still open and "park" handlers ignore cancellation
        #expect(harness.connection.inFlightCount == 0)
        let replies = await harness.finish()
        #expect(replies.count == 10)
        #expect(replies.allSatisfy { $0.errorCode == -32800 })
        handler.gate.open()
    }

    @Test func closeLetsInFlightRequestsFinish() async {
        let harness = PipeHarness()
        let handler = TestHandler()
        let run = Task { await harness.connection.run(handler: handler) }
        harness.sendFramed([Frames.request(1, method: "park")])
        await handler.gate.arrivals(1)
        harness.connection.close()
        handler.gate.open()
        await run.value
        #expect(harness.connection.inFlightCount == 0)
        #expect(harness.connection.requestsServed == 1)
        let replies = await harness.finish()
        #expect(replies.map(\.value) == [["jsonrpc": "2.0", "id": 1, "result": "late"]])
    }

    @Test func notificationBeforeAnyMessageUsesContentLength() async {
        let harness = PipeHarness()
        harness.connection.sendNotification("hello", params: ["path": "/a/b"])
        let first = await harness.replies.reply(0)
        #expect(first?.value == ["jsonrpc": "2.0", "method": "hello", "params": ["path": "/a/b"]])
        #expect(harness.replies.styles == [.contentLength])
        _ = await harness.runToEnd(TestHandler())
    }

    @Test func vanishedClientDoesNotStopTheConnection() async {
        let harness = PipeHarness(readsReplies: false)
        harness.sendFramed((1...200).map { Frames.request($0) })
        _ = await harness.runToEnd(TestHandler())
        #expect(harness.connection.requestsServed == 200)
    }
}
