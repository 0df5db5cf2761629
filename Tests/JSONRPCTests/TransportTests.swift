import AgentTestSupport
import Testing
import WireFormats

@testable import JSONRPC

/// Issue 12, class 7 (transport): junk lines, the framing of answers, short lengths, `"params": null`,
/// duplicated members; and a search over random byte streams for the next framing bug.
@Suite struct TransportTests {
    static func frame(_ body: String) -> String { "Content-Length: \(body.utf8.count)\r\n\r\n\(body)" }

    static func events(_ bytes: [UInt8], chunks: [Int] = [.max]) -> [FrameEvent] {
        var parser = FrameParser()
        var out: [FrameEvent] = []
        var index = 0
        var chunk = 0
        while index < bytes.count {
            let end = min(bytes.count, index + max(1, min(chunks[chunk % chunks.count], bytes.count)))
            out += parser.feed(bytes[index..<end])
            index = end
            chunk += 1
        }
        return out + parser.finish()
    }

    static func messages(_ events: [FrameEvent]) -> [String] {
        events.compactMap {
            if case .message(let bytes, _) = $0 { return String(decoding: bytes, as: UTF8.self) }; return nil
        }
    }

    static func problems(_ events: [FrameEvent]) -> [FramingProblem] {
        events.compactMap {
            if case .problem(let p) = $0 { return p }; return nil
        }
    }

    // MARK: A line that is neither a message nor a header

    @Test(arguments: [
        "note: hi\n", "\u{FEFF}note: hi\n", "x: y\r\nz: w\r\n", "hello world\n", "a:b:c\n", "Content-Type: x\n",
        "}\n", "12: 3\n",
    ])
    func aJunkLineCostsOneProblemAndTheStreamStaysInSync(junk: String) {
        let requests = (1...20).map { request($0, "ping") }
        for chunks in [[Int.max], [1], [3, 7]] {
            let events = Self.events(Array((junk + requests.joined(separator: "\n") + "\n").utf8), chunks: chunks)
            #expect(Self.messages(events) == requests, "\(junk.debugDescription) in chunks \(chunks)")
            #expect(Self.problems(events).count <= 1, "\(junk.debugDescription): \(Self.problems(events))")
        }
    }

    @Test func aByteOrderMarkBeforeAMessageIsSkipped() {
        let ping = request(1, "ping")
        for chunks in [[Int.max], [1], [2]] {
            let line = Self.events(Array(("\u{FEFF}" + ping + "\n" + ping + "\n").utf8), chunks: chunks)
            #expect(
                line == [.message(Array(ping.utf8), .newlineDelimited), .message(Array(ping.utf8), .newlineDelimited)])
            let framed = Self.events(Array(("\u{FEFF}" + Self.frame(ping)).utf8), chunks: chunks)
            #expect(framed == [.message(Array(ping.utf8), .contentLength)])
        }
    }

    @Test func aHeaderNameMayHaveSpaceBeforeItsColon() {
        let ping = request(1, "ping")
        let events = Self.events(Array(("Content-Length : \(ping.utf8.count)\r\n\r\n" + ping).utf8))
        #expect(events == [.message(Array(ping.utf8), .contentLength)])
    }

    @Test func aJunkLineBeforeOneHundredAndTwoRequestsLeavesThemAllAnswered() async {
        let peer = PipePeer()
        peer.send("note: hi\n" + (1...102).map { request($0, "fast") }.joined(separator: "\n") + "\n")
        await peer.finish()
        for id in 1...102 { #expect(peer.responses(id: .int(Int64(id))).count == 1, "id \(id)") }
    }

    // MARK: The framing of answers

    @Test func everyAnswerGoesInTheFramingOfTheMessageItAnswers() async {
        let peer = PipePeer()
        // First: a header block without Content-Length, whose id is still readable.
        peer.send("Content-Type: x\r\n\r\n" + request(1, "fast") + "Content-Length: 5\r\n\r\n")
        // A header without its body, then a message of each framing, each answered in its own.
        peer.send(Self.frame(request(2, "fast")) + "\n" + request(3, "echoLater") + "\n")
        peer.send(Self.frame(request(4, "echoLater")) + "\n" + "[" + request(5, "fast") + "]\n")
        peer.send(Self.frame("[" + request(6, "fast") + "]") + Self.frame(#"{"jsonrpc":"2.0","id":7,"#))
        peer.send("\n" + #"{"jsonrpc":"2.0","id":8,"# + "\n")
        await peer.finish()
        let expected: [Int64: FramingStyle] = [
            1: .contentLength, 2: .contentLength, 3: .newlineDelimited, 4: .contentLength, 5: .newlineDelimited,
            6: .contentLength, 7: .contentLength, 8: .newlineDelimited,
        ]
        let received = zip(peer.messages, peer.styles.withLock { $0 })
        for (id, style) in expected {
            let answers = received.filter {
                $0.0["id"] == .int(id) || $0.0.arrayValue?.first?["id"] == .int(id)
            }
            #expect(answers.count == 1 && answers.first?.1 == style, "id \(id): \(answers)")
        }
    }

    // MARK: A short Content-Length

    @Test func aShortContentLengthCostsOnlyItsOwnMessage() async {
        for short in 1...12 {
            let broken = #"{"jsonrpc":"2.0","id":"bad","method":"fast","params":{"pad":"0123456789abcdef"}}"#
            let header = "Content-Length: \(broken.utf8.count - short)\r\n\r\n"
            let next = Self.frame(request(2, "fast"))
            let events = Self.events(Array((header + broken + next + request(3, "fast") + "\n").utf8))
            #expect(Self.messages(events).suffix(2) == [request(2, "fast"), request(3, "fast")], "short by \(short)")
            #expect(Self.messages(events).count == 3 && Self.problems(events).count <= 1, "short by \(short)")
        }
        let peer = PipePeer()
        let broken = request(1, "fast")
        peer.send("Content-Length: \(broken.utf8.count - 5)\r\n\r\n" + broken + Self.frame(request(2, "fast")))
        await peer.finish()
        #expect(peer.responses(id: 2).map { $0["result"] } == [.null])
    }

    // MARK: "params": null

    @Test func paramsNullMeansNoParams() async {
        let scanned = Array(#"{"jsonrpc":"2.0","id":1,"method":"m","params":null}"#.utf8).withUnsafeBufferPointer {
            RequestScanner.scan($0)
        }
        #expect(scanned == .init(id: .number(1), method: "m", params: nil))
        let peer = PipePeer()
        // The scanner's path, and Envelope's (an escape in the method sends it there).
        peer.send(#"{"jsonrpc":"2.0","id":1,"method":"fast","params":null}"# + "\n")
        peer.send(#"{"jsonrpc":"2.0","id":2,"method":"f\u0061st","params":null}"# + "\n")
        peer.send(#"{"jsonrpc":"2.0","id":3,"method":"echo","params":null}"# + "\n")
        peer.send(#"{"params":null,"jsonrpc":"2.0","id":4,"method":"typ\u0065d"}"# + "\n")
        peer.send(#"{"jsonrpc":"2.0","method":"note","params":null}"# + "\n")
        peer.send(#"[{"jsonrpc":"2.0","id":5,"method":"fast","params":null}]"# + "\n")
        await peer.finish()
        #expect(peer.responses(id: 1).map { $0["result"] } == [.null])
        #expect(peer.responses(id: 2).map { $0["result"] } == [.null])
        #expect(peer.responses(id: 3).map { $0["result"] } == [.null])
        // Absent params: the method's own complaint about its missing field, not a refused request.
        #expect(peer.responses(id: 4).map { $0["error"]?["data"]?["kind"] } == [.string("invalidParams")])
        #expect(peer.messages.compactMap { $0.arrayValue?.first?["result"] } == [.null])
    }

    // MARK: A duplicated member

    @Test(arguments: [
        #"{"jsonrpc":"2.0","id":1,"id":2,"method":"fast"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"echo","id":2}"#,
        #"{"jsonrpc":"2.0","id":1,"\u0069d":2,"method":"fast"}"#,
        #"{"jsonrpc":"2.0","id":"a","id":"a","method":"fast"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"echo","method":"fast"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"a":[1,{"id":3}]},"params":{}}"#,
        #"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"fast"}"#,
        #"[{"jsonrpc":"2.0","id":1,"id":2,"method":"fast"}]"#,
    ])
    func aDuplicatedEnvelopeMemberIsAnInvalidRequest(text: String) async {
        let handler = TestHandler()
        let peer = PipePeer(handler: handler)
        peer.send(text + "\n")
        await peer.finish()
        let answers = peer.messages.flatMap { $0.arrayValue ?? [$0] }
        #expect(answers.count == 1)
        #expect(answers.first?["id"] == .null)
        #expect(answers.first?["error"]?["code"] == -32600)
        #expect(answers.first?["error"]?["data"]?["kind"] == "invalidRequest")
        #expect(handler.immediateOrder.withLock { $0 }.isEmpty)
    }

    @Test func memberNamesKeepDuplicatesAndDecodeEscapes() {
        let text = #"{ "a" : [1, {"b": "}"}], "\u0069d" :1, "id":"x\"}" , "c":{"d":[]}, "\u00e9":1, "é":2, "m\"":3}"#
        #expect(JSONLayout.memberNames(ofObject: Array(text.utf8)) == ["a", "id", "id", "c", "", "", "m\""])
        let long = "{\"" + String(repeating: "x", count: 17) + "\":1}"
        #expect(JSONLayout.memberNames(ofObject: Array(long.utf8)) == [""])
        let batch = #"[ {"a":"]"} , 1, "s", [[]] ,null]"#
        let ranges = JSONLayout.elements(ofArray: Array(batch.utf8)) ?? []
        #expect(
            ranges.map { String(decoding: Array(batch.utf8)[$0], as: UTF8.self) } == [
                #"{"a":"]"}"#, "1", #""s""#, "[[]]", "null",
            ])
    }

    // MARK: The search

    /// One piece of a generated input stream.
    private struct Piece {
        var bytes: String
        /// The valid request it carries, and its framing.
        var request: (id: Int, style: FramingStyle)?
        /// Whether it swallows bytes up to the next `Content-Length:` header (a body that is not there, or
        /// longer than declared): the next valid request must then be a `Content-Length` frame.
        var eatsUntilHeader = false
        var endsLine: Bool { bytes.utf8.last == 0x0A }
    }

    /// Random streams: valid requests of both framings, with garbage lines, BOMs, short and long lengths,
    /// headers without bodies, header blocks without a length, broken JSON, mixed in.
    private static func stream(seed: UInt64, pieces: Int) -> [Piece] {
        var random = SeededGenerator(seed: seed)
        let junkAlphabet = Array("abcdefXYZ0123456789 :-.!\t")
        func junk() -> String {
            String(
                (0..<Int.random(in: 0...30, using: &random)).map { _ in junkAlphabet.randomElement(using: &random)! })
        }
        var out: [Piece] = []
        var nextID = 1
        var bad = 0
        var mustFrame = false
        for _ in 0..<pieces {
            let roll = Int.random(in: 0..<100, using: &random)
            if roll < 45 {
                let id = nextID
                nextID += 1
                let padded = Bool.random(using: &random)
                // Answered at once, or by a task of its own (from another thread).
                let method = Int.random(in: 0..<4, using: &random) == 0 ? "echoLater" : "fast"
                let body =
                    padded
                    ? request(id, method, #"{"pad":"\#(junk().filter(\.isLetter))"}"#) : request(id, method)
                let bom = Int.random(in: 0..<8, using: &random) == 0 ? "\u{FEFF}" : ""
                if mustFrame || Bool.random(using: &random) {
                    out.append(Piece(bytes: bom + frame(body), request: (id, .contentLength)))
                    mustFrame = false
                } else {
                    out.append(
                        Piece(
                            bytes: bom + body + (Bool.random(using: &random) ? "\r\n" : "\n"),
                            request: (id, .newlineDelimited)))
                }
                continue
            }
            bad += 1
            let broken = #"{"jsonrpc":"2.0","id":"bad-\#(bad)","method":"fast","params":{"pad":"0123456789abcdef"}}"#
            switch roll {
            // Never blank: a blank line after a header-like junk line ends a header block, whose body (up to the
            // next `Content-Length:` header or JSON line) is then skipped.
            case 45..<55: out.append(Piece(bytes: "j" + junk() + "\n"))
            case 55..<60: out.append(Piece(bytes: "\u{FEFF}" + junk() + "\n"))
            case 60..<68:
                // A body with a tail of any bytes, cut short anywhere in its last part.
                let body = broken + (Bool.random(using: &random) ? junk() : "")
                let short = Int.random(in: 1...16, using: &random)
                out.append(Piece(bytes: "Content-Length: \(body.utf8.count - short)\r\n\r\n" + body))
            case 68..<74:
                let long = Int.random(in: 1...40, using: &random)
                out.append(
                    Piece(bytes: "Content-Length: \(broken.utf8.count + long)\r\n\r\n" + broken, eatsUntilHeader: true))
                mustFrame = true
            case 74..<80:
                out.append(
                    Piece(
                        bytes: "Content-Length: \(Int.random(in: 0...200, using: &random))\r\n\r\n",
                        eatsUntilHeader: true))
                mustFrame = true
            case 80..<86: out.append(Piece(bytes: "X-\(junk().filter(\.isLetter)): 1\r\n\r\n" + broken))
            case 86..<90: out.append(Piece(bytes: "Content-Length: x\r\n\r\n" + broken))
            case 90..<95: out.append(Piece(bytes: String(broken.prefix(Int.random(in: 1...40, using: &random))) + "\n"))
            default: out.append(Piece(bytes: junk() + ": " + junk() + "\r\n"))
            }
        }
        // A valid request never shares a line with what came before it.
        for index in out.indices.dropFirst() where out[index].request?.style == .newlineDelimited {
            if !out[index - 1].endsLine { out[index - 1].bytes += "\n" }
        }
        return out
    }

    private static func around(_ id: Int, _ pieces: [Piece]) -> String {
        guard let index = pieces.firstIndex(where: { $0.request?.id == id }) else { return "" }
        return pieces[max(0, index - 3)...index].map(\.bytes).joined().debugDescription
    }

    @Test func searchFramerOverRandomStreamsAndSplits() {
        for seed in UInt64(1)...200 {
            let pieces = Self.stream(seed: seed, pieces: 60)
            let bytes = Array(pieces.map(\.bytes).joined().utf8)
            var random = SeededGenerator(seed: seed &* 7919)
            let chunks = (0..<8).map { _ in Int.random(in: 1...64, using: &random) }
            for split in [[Int.max], chunks] {
                let events = Self.events(bytes, chunks: split)
                var found: [Int: [FramingStyle]] = [:]
                for case .message(let body, let style) in events {
                    if let message = IncomingMessage(reading: body), case .number(let id)? = message.id {
                        found[Int(id), default: []].append(style)
                    }
                }
                for piece in pieces {
                    guard let (id, style) = piece.request else { continue }
                    #expect(
                        found[id] == [style],
                        "seed \(seed), split \(split), id \(id): \(found[id] ?? []) in \(Self.around(id, pieces))")
                }
            }
        }
    }

    @Test(arguments: UInt64(1)...6)
    func searchConnectionAnswersEveryValidRequestOnceInItsFraming(seed: UInt64) async {
        let pieces = Self.stream(seed: seed, pieces: 300)
        let peer = PipePeer()
        var random = SeededGenerator(seed: seed)
        var text = pieces.map(\.bytes).joined()
        while !text.isEmpty {
            let cut = text.index(text.startIndex, offsetBy: min(text.count, Int.random(in: 1...512, using: &random)))
            peer.send(String(text[..<cut]))
            text.removeSubrange(..<cut)
        }
        await peer.finish()
        let received = Array(zip(peer.messages, peer.styles.withLock { $0 }))
        for piece in pieces {
            guard let (id, style) = piece.request else { continue }
            let answers = received.filter { $0.0["id"] == .int(Int64(id)) }
            #expect(answers.count == 1, "seed \(seed), id \(id): \(answers.map(\.0))")
            #expect(answers.first?.1 == style, "seed \(seed), id \(id)")
            #expect(answers.first?.0.containsKey("result") == true, "seed \(seed), id \(id)")
        }
    }
}
