import Testing
@testable import JSONRPC

/// A reproducible generator (SplitMix64), so a failure can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A stream mixing valid requests with every kind of malformed frame the parser recovers from. Ids of
/// valid requests count up from 1; broken messages carry ids from 1,000,000 (or none).
struct RandomStream {
    static let maxMessageBytes = 2000

    var pieces: [[UInt8]] = []
    var validIDs: Set<RequestID> = []
    private var nextValid = 1
    private var nextBroken = 1_000_000
    private var random: SeededGenerator

    init(seed: UInt64, items: Int) {
        random = SeededGenerator(seed: seed)
        // After a frame whose end is unknown (bad or lying Content-Length), only a Content-Length header
        // (the resynchronisation marker) is guaranteed to be found again.
        var needContentLength = false
        for _ in 0..<items {
            needContentLength = append(needContentLength: needContentLength)
        }
    }

    var bytes: [UInt8] { pieces.flatMap { $0 } }

    private mutating func validID() -> Int {
        defer { nextValid += 1 }
        validIDs.insert(.number(Int64(nextValid)))
        return nextValid
    }

    private mutating func brokenID() -> String {
        if Bool.random(using: &random) { return "" }
        defer { nextBroken += 1 }
        return #","id":\#(nextBroken)"#
    }

    private mutating func pick(_ count: Int) -> Int { Int.random(in: 0..<count, using: &random) }

    private mutating func validFrame() -> [UInt8] {
        let body = pick(10) == 0 ? Frames.request(validID(), method: "nope") : Frames.request(validID(), method: "add", params: #"{"a":1,"b":2}"#)
        switch pick(3) {
        case 0: return Frames.framed(body, headers: "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n")
        case 1: return Array("content-length:  \(body.utf8.count) \r\n\r\n\(body)".utf8)
        default: return Frames.framed(body)
        }
    }

    private mutating func junk(count: Int) -> String {
        let alphabet = Array("abcXYZ019 \t!#$%&'()*+,-./;<=>?@\\^_`|~}]\"é")
        var text = String(alphabet[pick(alphabet.count - 4)])  // never starts with a space, a quote or an opening bracket
        for _ in 1..<max(1, count) { text.append(alphabet[pick(alphabet.count)]) }
        return text
    }

    /// Appends one item; returns whether the next one must be Content-Length framed.
    private mutating func append(needContentLength: Bool) -> Bool {
        let choice = needContentLength ? 0 : pick(14)
        switch choice {
        case 0, 1, 2:
            pieces.append(validFrame())
        case 3, 4:
            let prefix = ["", "\n", "\r\n", "\n \n"][pick(4)]
            pieces.append(Array("\(prefix)\(Frames.request(validID(), method: "add", params: #"{"a":1,"b":1}"#))\(pick(2) == 0 ? "\r\n" : "\n")".utf8))
        case 5:
            let ids = (0..<(1 + pick(3))).map { _ in validID() }
            pieces.append(Frames.line("[" + ids.map { Frames.request($0) }.joined(separator: ",") + "," + Frames.notification("note") + "]"))
        case 6:
            pieces.append(Frames.line(Frames.notification("note")))
        case 7:
            let broken = #"{"jsonrpc":"2.0"\#(brokenID()),"method":"add","params":{"a":"#
            pieces.append(pick(2) == 0 ? Frames.framed(broken) : Frames.line(broken))
        case 8:
            pieces.append(Frames.framed(#"{"jsonrpc":"1.0"\#(brokenID()),"method":"add"}"#))
        case 9:
            pieces.append(Array("\(junk(count: 1 + pick(80)).replacingOccurrences(of: ":", with: ""))\n".utf8))
        case 10:
            pieces.append(Array(junk(count: 1 + pick(80)).utf8))
            return true
        case 11:
            let value = ["abc", "-5", "99999999999999999999999", "12, 13", ""][pick(5)]
            pieces.append(Array("Content-Length: \(value)\r\n\r\n{\"jsonrpc\":\"2.0\"\(brokenID()),\"method\":\"add\"}".utf8))
            return true
        case 12:
            let body = #"{"jsonrpc":"2.0"\#(brokenID()),"method":"add","params":{"a":1"#
            let declared = body.utf8.count + 1 + pick(300)
            pieces.append(Array("Content-Length: \(declared)\r\n\r\n\(body)".utf8))
            return true
        default:
            let padding = String(repeating: "p", count: Self.maxMessageBytes + pick(3000))
            pieces.append(Frames.framed(#"{"jsonrpc":"2.0"\#(brokenID()),"method":"add","params":"\#(padding)"}"#))
        }
        return false
    }
}

@Suite(.timeLimit(.minutes(1))) struct RandomStreamTests {
    @Test(arguments: [UInt64(1), 2, 3])
    func parserEventsDoNotDependOnHowInputIsSplit(seed: UInt64) {
        let stream = RandomStream(seed: seed, items: 1500)
        var whole = FrameParser(maxBodyBytes: RandomStream.maxMessageBytes)
        let expected = whole.events(stream.bytes)
        var random = SeededGenerator(seed: seed)
        var chunked = FrameParser(maxBodyBytes: RandomStream.maxMessageBytes)
        var events: [FrameEvent] = []
        var start = 0
        let bytes = stream.bytes
        while start < bytes.count {
            let end = min(bytes.count, start + Int.random(in: 1...300, using: &random))
            events += chunked.feed(bytes[start..<end])
            start = end
        }
        events += chunked.finish()
        #expect(events == expected)
    }

    @Test(arguments: [UInt64(42), 7])
    func everyValidRequestInARandomStreamIsAnsweredOnce(seed: UInt64) async {
        let stream = RandomStream(seed: seed, items: 3000)
        let harness = PipeHarness(maxMessageBytes: RandomStream.maxMessageBytes)
        for piece in stream.pieces { harness.send(piece) }
        let replies = await harness.runToEnd(TestHandler())
        var answered: [RequestID: Int] = [:]
        for reply in replies {
            let responses = reply.elements.isEmpty ? [reply.id] : reply.elements.map(\.id)
            for id in responses { answered[id ?? .null, default: 0] += 1 }
        }
        #expect(stream.validIDs.isSubset(of: Set(answered.keys)))
        #expect(stream.validIDs.allSatisfy { answered[$0] == 1 })
        let unexpected = answered.keys.filter { id in
            if stream.validIDs.contains(id) || id == .null { return false }
            if case .number(let n) = id, n >= 1_000_000 { return false }
            return true
        }
        #expect(unexpected.isEmpty)
        #expect(harness.connection.requestsServed == answered.values.reduce(0, +))
    }
}
