import Foundation
import Synchronization
import Testing

@testable import JSONRPC

/// Requests the handler answers at once, on the reading thread (`MessageHandler.immediateReply`).
@Suite struct ImmediateReplyTests {
    @Test func immediateRepliesAreAnsweredOnceEachAndAskedForInArrivalOrder() async throws {
        let handler = TestHandler()
        let peer = PipePeer(handler: handler)
        let lines = (1...2000).map { request($0, "fast", #"{"n":\#($0)}"#) } + [request(2001, "echo", #"{"n":2001}"#)]
        peer.send(lines.joined(separator: "\n") + "\n")
        await peer.finish()
        #expect(peer.messages.count == 2001)
        for id in 1...2001 {
            let replies = peer.responses(id: .int(Int64(id)))
            #expect(replies.count == 1 && replies.first?["result"]?["n"] == .int(Int64(id)), "id \(id): \(replies)")
        }
        #expect(handler.immediateOrder.withLock { $0 } == (1...2000).map { .number(Int64($0)) })
        #expect(peer.connection.requestsServed == 2001)
        #expect(peer.connection.inFlightCount == 0)
    }

    @Test func immediateRepliesKeepIDsAndTheFramingOfEachRequest() async throws {
        let peer = PipePeer()
        let first = #"{"jsonrpc":"2.0","id":"s-1","method":"fast","params":{"n":1}}"#
        peer.send("Content-Length: \(first.utf8.count)\r\n\r\n\(first)")
        peer.send(#"{"jsonrpc":"2.0","id":null,"method":"fast"}"# + "\n")
        peer.send(request(3, "fastError") + "\n")
        await peer.finish()
        #expect(peer.responses(id: "s-1").first?["result"] == ["n": 1])
        #expect(peer.responses(id: .null).first?["result"] == .null)
        #expect(peer.responses(id: .null).first?.containsKey("result") == true)
        #expect(peer.responses(id: 3).first?["error"] == ["code": -32099, "message": "fast error"])
        #expect(peer.styles.withLock { $0 } == [.contentLength, .newlineDelimited, .newlineDelimited])
    }

    @Test func aRequestTheScannerLeavesToJSONDecoderIsStillOfferedForAnImmediateReply() async throws {
        let handler = TestHandler()
        let peer = PipePeer(handler: handler)
        peer.send(#"{"jsonrpc":"2.0","id":1,"method":"f\u0061st"}"# + "\n")
        await peer.finish()
        #expect(peer.responses(id: 1).first?["result"] == .null)
        #expect(handler.immediateOrder.withLock { $0 } == [.number(1)])
    }

    @Test func batchesMixImmediateAndSlowAnswers() async throws {
        let peer = PipePeer()
        peer.send(
            "["
                + [request(1, "fast", #"{"n":1}"#), request(2, "echo", #"{"n":2}"#), request(3, "fastError")].joined(
                    separator: ",") + "]\n")
        await peer.finish()
        guard case .array(let replies)? = peer.messages.first, peer.messages.count == 1 else {
            Issue.record("expected one batch reply, got \(peer.messages)")
            return
        }
        #expect(replies.count == 3)
        #expect(replies.first { $0["id"] == 1 }?["result"] == ["n": 1])
        #expect(replies.first { $0["id"] == 2 }?["result"] == ["n": 2])
        #expect(replies.first { $0["id"] == 3 }?["error"]?["code"] == -32099)
    }

    @Test func theObserverSeesImmediateReplies() async throws {
        let observed = ObservedMessages()
        let peer = PipePeer(observer: observed)
        peer.send(request(1, "fast", #"{"n":5}"#) + "\n")
        await peer.finish()
        #expect(
            observed.log.withLock { $0 } == [
                "in " + request(1, "fast", #"{"n":5}"#), #"out {"jsonrpc":"2.0","id":1,"result":{"n":5}}"#,
            ])
    }
}

/// Back-pressure: the connection stops reading while too much is outstanding, so a flooding client ends
/// up blocked in its own writes instead of the agent buffering without bound.
@Suite struct BackPressureTests {
    @Test func readingPausesWhileTheInFlightLimitIsReached() async throws {
        let handler = TestHandler()
        let peer = PipePeer(handler: handler, maxInFlight: 4)
        peer.send((1...4).map { request($0, "hold") }.joined(separator: "\n") + "\n")
        try await peer.waitFor("four requests in flight") { _ in peer.connection.inFlightCount == 4 }
        // 2 MB of requests: the pipe (64 KiB) fills and the client's writes are refused, as nothing is read.
        let lines = (1...40_000).map { request(1000 + $0, "echo") }
        let taken = await peer.sendUntilFull(lines)
        #expect(taken < lines.count / 4, "the connection went on reading: \(taken) of \(lines.count) requests taken")
        #expect(peer.connection.inFlightCount == 4)
        handler.releaseHeld()
        try await peer.waitFor("every request taken answered") { $0.count == 4 + taken }
        await peer.finish()
        #expect(peer.messages.count == 4 + taken)
    }

    @Test func readingPausesWhileTooMuchOutputIsQueued() async throws {
        // Nothing reads the output: once its pipe is full, answers queue behind the blocked write. (The
        // in-flight limit only stops a reader that runs far ahead of the answers, on a busy machine.)
        let peer = PipePeer(maxInFlight: 3000, maxQueuedOutputBytes: 32 << 10, readingOutput: false)
        let payload = String(repeating: "x", count: 1000)
        let lines = (1...8000).map { request($0, "echoLater", #"{"p":"\#(payload)"}"#) }
        let taken = await peer.sendUntilFull(lines)
        // Without the limit every request would be read and its answer queued (8 MB).
        #expect(taken < lines.count / 2, "the connection went on reading: \(taken) of \(lines.count) requests taken")
        peer.startReadingOutput()
        try await peer.waitFor("every request taken answered") { $0.count == taken }
        await peer.finish()
        #expect(peer.messages.count == taken)
    }
}
