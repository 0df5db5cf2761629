import AgentTestSupport
import JSONRPC
import WireFormats

/// What the agent owes one request id of a fuzz input.
enum Owed {
    /// A successful response.
    case result
    /// An error with this code.
    case error(Int64)
    /// An error, whichever.
    case anyError
    /// A response of any kind (but never an internal error).
    case anyAnswer

    func accepts(_ response: JSONValue) -> Bool {
        switch self {
        case .result: response.isSuccess
        case .error(let code): response.errorCode == code
        case .anyError: response.errorCode != nil
        case .anyAnswer: response.isSuccess || response.errorCode != nil
        }
    }
}

/// One fuzz input: the bytes sent, the ids the agent must answer exactly once, and the ids it may answer
/// at most once (they occur once in the bytes, but the input is broken in ways that may hide them).
struct FuzzInput {
    var kind: String
    var bytes: [UInt8]
    var owed: [(id: JSONValue, owed: Owed)] = []
    var atMostOnce: [JSONValue] = []
}

/// Random and mutated frames and JSON, seeded. Every input is built so that it cannot hide the sentinel that
/// follows it (see `sentinel`), except where the protocol says a message swallows what follows: a declared
/// body over the size limit is skipped by its declared length, so such inputs supply the whole body (or come
/// last, see `endlessBody`).
struct FuzzInputs {
    let maxMessageBytes: Int
    private var random: SeededGenerator
    private var serial = 0

    init(seed: UInt64, maxMessageBytes: Int) {
        random = SeededGenerator(seed: seed)
        self.maxMessageBytes = maxMessageBytes
    }

    mutating func next() -> FuzzInput {
        serial += 1
        let roll = Int.random(in: 0..<100, using: &random)
        switch roll {
        case 0..<14: return randomBytes()
        case 14..<34: return mutatedFrame()
        case 34..<44: return truncated()
        case 44..<58: return wrongParamTypes()
        case 58..<64: return badUTF8()
        case 64..<68: return deepNesting()
        case 68..<74: return hugeNumbers()
        case 74..<75: return overTheLimit()
        case 75..<81: return badContentLength()
        case 81..<90: return batch()
        default: return validRequest()
        }
    }

    // MARK: Sentinels

    /// A ping that is served whatever state the previous input left the frame parser in: the blank lines end
    /// any line or header block, and a `Content-Length: N` header ends a short body and stops any resync
    /// (it can never occur inside JSON). The trailing newline makes the body a line of its own if its header
    /// was swallowed by an unfinished line.
    mutating func sentinel(_ id: String) -> [UInt8] {
        let body = Requests.request(id: .string(id), "ping")
        let length = body.utf8.count
        let header = [
            "Content-Length: \(length)", "content-length:\(length)", "CONTENT-LENGTH: \t\(length)",
            "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: \(length)",
            "Content-Length: \(length)\r\nContent-Type: application/json",
        ].randomElement(using: &random)!
        return Array("\r\n\r\n\n\(header)\r\n\r\n\(body)\n".utf8)
    }

    /// A ping on a line of its own, for right after a sentinel (the parser is then at a clean boundary).
    func lineSentinel(_ id: String) -> [UInt8] { Array((Requests.request(id: .string(id), "ping") + "\n").utf8) }

    /// A frame declaring a body far larger than any stream, with an id in its first bytes: it swallows
    /// everything after it, so it can only come last; the agent answers it -32600 when input ends.
    mutating func endlessBody(_ id: String) -> FuzzInput {
        let body = Requests.request(id: .string(id), "ping")
        return FuzzInput(
            kind: "endless body", bytes: Array("Content-Length: 999999999999999\r\n\r\n\(body)".utf8),
            owed: [(.string(id), .error(-32600))])
    }

    // MARK: Valid requests, the material of everything else

    private enum ParamType { case string, bool, number, strings, object }

    private struct Method {
        var name: String
        var params: [(name: String, type: ParamType, sample: JSONValue)]
        var required: Set<String>
    }

    private static let storedKeys = (0..<4).map { "fuzz-key-\($0)" }

    /// The methods a client may send any number of times (not `initialize`, `shutdown` or `exit`), with
    /// valid sample params.
    private static let methods: [Method] = [
        Method(name: "ping", params: [], required: []),
        Method(name: "status", params: [], required: []),
        Method(name: "listTokens", params: [], required: []),
        Method(
            name: "getToken",
            params: [("key", .string, "fuzz-key-0"), ("minValidity", .number, 60), ("forceRefresh", .bool, false)],
            required: ["key"]),
        Method(
            name: "buildConnectURL",
            params: [
                ("scope", .strings, ["read_odometer", "required:read_vin"]),
                ("redirectURI", .string, "http://localhost:8000/callback"),
                ("mode", .string, "test"), ("forcePrompt", .bool, true), ("state", .string, "fuzz-state"),
                ("make", .string, "TESLA"),
                ("singleSelect", .bool, true), ("singleSelectVIN", .string, "5YJSA1E14FF101307"),
                ("flags", .object, ["country": "DE", "beta": true]),
                ("user", .string, "fuzz-user"), ("key", .string, "fuzz-connect"),
            ], required: []),
        Method(
            name: "handleRedirect",
            params: [
                ("url", .string, "http://localhost:8000/callback?code=fuzz-code&state=fuzz-state"),
                ("key", .string, "fuzz-redirect"),
            ], required: ["url"]),
        Method(
            name: "exchangeCode",
            params: [
                ("code", .string, "fuzz-not-a-code"), ("key", .string, "fuzz-exchange"),
                ("redirectURI", .string, "http://localhost:8000/callback"), ("flags", .object, ["x": 1]),
            ], required: ["code"]),
        Method(name: "appToken", params: [("forceRefresh", .bool, false)], required: []),
        Method(
            name: "storeToken",
            params: [
                ("key", .string, "fuzz-key-1"), ("accessToken", .string, "fuzz-access"),
                ("refreshToken", .string, "fuzz-refresh"),
                ("expiresAt", .string, "2030-01-01T00:00:00Z"), ("refreshExpiresAt", .string, "2030-03-01T00:00:00Z"),
                ("scope", .string, "read_odometer"),
            ], required: ["key", "accessToken", "refreshToken", "expiresAt"]),
        Method(name: "forgetToken", params: [("key", .string, "fuzz-forgotten")], required: ["key"]),
        Method(name: "noSuchMethod", params: [], required: []),
    ]

    private mutating func id(_ prefix: String) -> String { "\(prefix)-\(serial)" }

    /// A valid request of a random method, with its required params and some of the optional ones.
    private mutating func randomRequest(id: JSONValue) -> String {
        let method = Self.methods.randomElement(using: &random)!
        var params: [String: JSONValue] = [:]
        for param in method.params where method.required.contains(param.name) || random.chance(0.5) {
            params[param.name] = param.sample
        }
        if method.name == "getToken" || method.name == "storeToken" {
            params["key"] = .string(Self.storedKeys.randomElement(using: &random)!)
        }
        return Requests.request(id: id, method.name, params.isEmpty && random.chance(0.5) ? nil : .object(params))
    }

    private mutating func framed(_ body: String) -> [UInt8] {
        random.chance(0.5) ? Array((body + "\n").utf8) : Requests.framed(body)
    }

    private mutating func validRequest() -> FuzzInput {
        let id = id("v")
        return FuzzInput(
            kind: "valid request", bytes: framed(randomRequest(id: .string(id))), owed: [(.string(id), .anyAnswer)])
    }

    // MARK: Broken input

    private mutating func randomBytes() -> FuzzInput {
        let count = Int.random(in: 1...512, using: &random)
        // Bias towards the bytes that matter to the framing and to JSON.
        let special: [UInt8] =
            Array("{}[]\":,\\\r\n 0123456789eE-+.tfn".utf8) + [0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xE2, 0xED, 0xF4, 0xFF]
        var bytes: [UInt8]
        repeat {
            bytes = (0..<count).map { _ in
                random.chance(0.5) ? special.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
            }
        } while Self.declaresOversizedBody(bytes, limit: maxMessageBytes)
        return FuzzInput(kind: "random bytes", bytes: bytes)
    }

    private mutating func mutatedFrame() -> FuzzInput {
        let id = id("m")
        let original: [UInt8] = random.chance(0.15) ? batchBytes(ids: [id]) : framed(randomRequest(id: .string(id)))
        for _ in 0..<10 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &random) { mutate(&bytes) }
            if !Self.declaresOversizedBody(bytes, limit: maxMessageBytes) {
                return FuzzInput(
                    kind: "mutated frame", bytes: bytes, atMostOnce: Self.occursOnce(id, in: bytes) ? [.string(id)] : []
                )
            }
        }
        return FuzzInput(kind: "mutated frame", bytes: original, owed: [(.string(id), .anyAnswer)])
    }

    private mutating func mutate(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else { bytes = [UInt8(ascii: "{")]; return }
        let at = Int.random(in: 0..<bytes.count, using: &random)
        let interesting: [UInt8] = Array("{}[]\":,\\\r\n 09-.eu".utf8) + [0x00, 0x80, 0xC0, 0xFF]
        switch Int.random(in: 0..<6, using: &random) {
        case 0: bytes[at] ^= 1 << UInt8.random(in: 0...7, using: &random)
        case 1: bytes[at] = interesting.randomElement(using: &random)!
        case 2:
            bytes.insert(
                contentsOf: (0..<Int.random(in: 1...8, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }, at: at)
        case 3: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &random)))
        case 4:
            let end = min(bytes.count, at + Int.random(in: 1...24, using: &random))
            bytes.insert(contentsOf: bytes[at..<end], at: end)
        default: bytes.removeSubrange(at...)
        }
    }

    /// A valid request cut short. The id comes first, so when the cut falls after it the agent can still
    /// read it from the broken text and must answer it (a parse error).
    private mutating func truncated() -> FuzzInput {
        let id = id("t")
        let body = randomRequest(id: .string(id))  // keys are sorted, so "id" comes first
        let cut = Int.random(in: 1..<body.utf8.count, using: &random)
        let prefix = String(decoding: Array(body.utf8).prefix(cut), as: UTF8.self)
        let idEnd = #"{"id":"\#(id)""#.utf8.count
        let owed: [(id: JSONValue, owed: Owed)] = cut >= idEnd ? [(.string(id), .error(-32700))] : []
        if random.chance(0.5) {
            // A line that ends (or not: then the next sentinel's line break ends it).
            return FuzzInput(
                kind: "truncated", bytes: Array(prefix.utf8) + (random.chance(0.5) ? [0x0A] : []), owed: owed,
                atMostOnce: owed.isEmpty ? [.string(id)] : [])
        }
        // A frame whose body is shorter than its Content-Length: it ends where the next header starts.
        return FuzzInput(
            kind: "truncated", bytes: Array("Content-Length: \(body.utf8.count)\r\n\r\n\(prefix)".utf8), owed: owed,
            atMostOnce: owed.isEmpty ? [.string(id)] : [])
    }

    private static let values: [JSONValue] = [
        .null, true, false, 0, -1, 1.5, 1e300, "", "x", [], [1], ["x"], [:], ["a": 1], ["a": ["b": [nil]]],
    ]

    private static func matches(_ value: JSONValue, _ type: ParamType) -> Bool {
        switch (value, type) {
        case (.string, .string), (.bool, .bool), (.int, .number), (.double, .number), (.object, .object): true
        case (.array(let items), .strings): items.allSatisfy { $0.stringValue != nil }
        default: false
        }
    }

    /// A method's valid params with one of them (or the params themselves) of a wrong or odd type: a wrong
    /// type must be answered -32602, anything else with an answer, never a crash.
    private mutating func wrongParamTypes() -> FuzzInput {
        let id = id("w")
        let method = Self.methods.filter { !$0.params.isEmpty }.randomElement(using: &random)!
        var params: [String: JSONValue] = [:]
        for param in method.params { params[param.name] = param.sample }
        let value = Self.values.randomElement(using: &random)!
        if random.chance(0.15) {
            // params itself is not an object.
            let notAnObject: JSONValue = random.chance(0.5) ? value : .array([.object(params)])
            let bytes = framed(Requests.request(id: .string(id), method.name, notAnObject))
            let owed: Owed = value.isObject ? .anyAnswer : method.required.isEmpty ? .anyAnswer : .anyError
            return FuzzInput(kind: "wrong param types", bytes: bytes, owed: [(.string(id), owed)])
        }
        let param = method.params.randomElement(using: &random)!
        params[param.name] = value
        let wrong = value != .null && !Self.matches(value, param.type)
        let missing = value == .null && method.required.contains(param.name)
        let bytes = framed(Requests.request(id: .string(id), method.name, .object(params)))
        return FuzzInput(
            kind: "wrong param types", bytes: bytes,
            owed: [(.string(id), wrong || missing ? .error(-32602) : .anyAnswer)])
    }

    private mutating func badUTF8() -> FuzzInput {
        let id = id("u")
        let bad: [[UInt8]] = [
            [0xFF], [0xFE, 0xFF], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0x80], [0xE2, 0x82],
            [0xF4, 0x90, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80],
        ]
        let chosen = bad.randomElement(using: &random)!
        let escaped = [#"\ud800"#, #"\udc00\ud800"#, #"\u0000"#, #"\uZZZZ"#, #"\"#].randomElement(using: &random)!
        let head = Array(#"{"id":"\#(id)","jsonrpc":"2.0","#.utf8)
        let tails: [[UInt8]] = [
            Array(#""method":""#.utf8) + chosen + Array(#""}"#.utf8),
            Array(#""method":"getToken","params":{"key":"k"#.utf8) + chosen + Array(#""}}"#.utf8),
            Array(#""method":"storeToken","params":{"#.utf8) + chosen + Array(#"":1}}"#.utf8),
            Array(#""method":"getToken","params":{"key":"\#(escaped)"}}"#.utf8),
            Array(#""method":"ping","params":{"note":""#.utf8) + chosen + Array(#""}}"#.utf8),
        ]
        let bytes = head + tails.randomElement(using: &random)!
        let framedBytes =
            random.chance(0.5) ? bytes + [0x0A] : Array("Content-Length: \(bytes.count)\r\n\r\n".utf8) + bytes
        return FuzzInput(kind: "bad UTF-8", bytes: framedBytes, owed: [(.string(id), .anyAnswer)])
    }

    private mutating func deepNesting() -> FuzzInput {
        let id = id("d")
        let depth = [16, 256, 511, 512, 513, 1000, 5000, 20_000, 100_000].randomElement(using: &random)!
        let closed = random.chance(0.6)
        let (open, close) = random.chance(0.5) ? ("[", "]") : (#"{"a":"#, "}")
        var text = #"{"id":"\#(id)","jsonrpc":"2.0","method":"ping","params":{"deep":"#
        text +=
            String(repeating: open, count: depth) + (closed ? "1" + String(repeating: close, count: depth) + "}}" : "")
        let owed: Owed = closed ? .anyAnswer : .anyError
        // An unfinished one as a line: a frame would wait for the rest of its declared body.
        return FuzzInput(
            kind: "deep nesting", bytes: closed ? framed(text) : Array((text + "\n").utf8), owed: [(.string(id), owed)])
    }

    private mutating func hugeNumbers() -> FuzzInput {
        let id = id("h")
        let numbers = [
            "1e400", "-1e400", "123456789012345678901234567890", "1e308", "-1e308", "4.9e-324", "1e-400", "-0", "0.1e1",
            "9223372036854775807", "-9223372036854775808", "9223372036854775808",
            "1" + String(repeating: "0", count: 5000),
        ]
        let number = numbers.randomElement(using: &random)!
        switch Int.random(in: 0..<4, using: &random) {
        case 0:
            // A huge number as the id: not an id the agent can answer to; it must still not break.
            let body = #"{"jsonrpc":"2.0","id":\#(number),"method":"ping"}"#
            return FuzzInput(kind: "huge numbers", bytes: framed(body))
        case 1:
            // A big but exact integer id: the answer must carry it exactly (no trip through Double).
            let exact = JSONValue.int(9_007_199_254_740_993 + 2 * Int64(serial))
            let bytes = framed(Requests.request(id: exact, "ping"))
            return FuzzInput(kind: "huge numbers", bytes: bytes, owed: [(exact, .result)])
        case 2:
            let body =
                #"{"id":"\#(id)","jsonrpc":"2.0","method":"getToken","params":{"key":"fuzz-key-0","minValidity":\#(number)}}"#
            return FuzzInput(kind: "huge numbers", bytes: framed(body), owed: [(.string(id), .anyAnswer)])
        default:
            let body =
                #"{"id":"\#(id)","jsonrpc":"2.0","method":"storeToken","params":{"key":"fuzz-key-2","accessToken":"a","refreshToken":"r","expiresAt":\#(number)}}"#
            // Not a time: -32602, or -32700 when the number is beyond what JSON parsing accepts.
            return FuzzInput(kind: "huge numbers", bytes: framed(body), owed: [(.string(id), .anyError)])
        }
    }

    /// A message over the size limit, whole: skipped unbuffered and answered -32600 (its id is in its first bytes).
    private mutating func overTheLimit() -> FuzzInput {
        let id = id("o")
        let length = maxMessageBytes + Int.random(in: 1...4096, using: &random)
        let head = #"{"id":"\#(id)","jsonrpc":"2.0","method":"ping","params":{"pad":""#
        let body = head + String(repeating: "x", count: length - head.utf8.count - 3) + #""}}"#
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            return FuzzInput(
                kind: "over the size limit", bytes: Array("Content-Length: \(length)\r\n\r\n\(body)".utf8),
                owed: [(.string(id), .error(-32600))])
        case 1:
            return FuzzInput(
                kind: "over the size limit", bytes: Array((body + "\n").utf8), owed: [(.string(id), .error(-32600))])
        default:
            // A header block over 8 KiB: skipped with its (readable) body; an answer is not promised.
            let small = Requests.request(id: .string(id), "ping")
            let padding = "X-Padding: " + String(repeating: "p", count: 9000)
            return FuzzInput(
                kind: "over the size limit",
                bytes: Array("\(padding)\r\nContent-Length: \(small.utf8.count)\r\n\r\n\(small)".utf8),
                atMostOnce: [.string(id)])
        }
    }

    private mutating func badContentLength() -> FuzzInput {
        let id = id("c")
        let body = #"{"id":"\#(id)","jsonrpc":"2.0","method":"ping"}"#
        let headers = [
            "Content-Length: abc", "Content-Length: -5", "Content-Length:", "Content-Length: 1.5",
            "Content-Length: 0x10",
            "Content-Length: 99999999999999999999999", "Content-Length: 12 34", "Content-Length: 0",
            "Content-Length: \(body.utf8.count)\r\nContent-Length: \(body.utf8.count + 1)",
            "Content-Type: application/json",
            "Content-Length \(body.utf8.count)",
        ]
        let header = headers.randomElement(using: &random)!
        return FuzzInput(
            kind: "bad Content-Length", bytes: Array("\(header)\r\n\r\n\(body)".utf8), owed: [(.string(id), .anyAnswer)]
        )
    }

    private mutating func batchBytes(ids: [String]) -> [UInt8] {
        var elements = ids.map { randomRequest(id: .string($0)) }
        if random.chance(0.3) { elements.append(Requests.notification("ping")) }
        if random.chance(0.2) { elements.append(["5", "{}", "[]", #""x""#, "null"].randomElement(using: &random)!) }
        elements.shuffle(using: &random)
        return framed("[" + elements.joined(separator: ",") + "]")
    }

    private mutating func batch() -> FuzzInput {
        switch Int.random(in: 0..<10, using: &random) {
        case 0: return FuzzInput(kind: "batch", bytes: framed("[]"))
        case 1:
            return FuzzInput(
                kind: "batch",
                bytes: framed(
                    ["[1,2,3]", "[[]]", "[{}]", #"["x"]"#, "[null]", "[[1,[2]]]"].randomElement(using: &random)!))
        case 2:
            let pings = (0..<Int.random(in: 1...5, using: &random)).map { _ in Requests.notification("ping") }
            return FuzzInput(kind: "batch", bytes: framed("[" + pings.joined(separator: ",") + "]"))
        default:
            let count =
                random.chance(0.1) ? Int.random(in: 50...300, using: &random) : Int.random(in: 1...12, using: &random)
            let ids = (0..<count).map { "b-\(serial)-\($0)" }
            return FuzzInput(kind: "batch", bytes: batchBytes(ids: ids), owed: ids.map { (.string($0), .anyAnswer) })
        }
    }

    // MARK: Helpers

    /// Whether `bytes` hold a `Content-Length` header (as the agent reads one: name case-insensitive, blanks
    /// around the colon) declaring more than `limit` bytes: such a frame is skipped by its declared length
    /// and would swallow the sentinel after it.
    static func declaresOversizedBody(_ bytes: [UInt8], limit: Int) -> Bool {
        let name = Array("content-length".utf8)
        var index = 0
        while index + name.count < bytes.count {
            defer { index += 1 }
            guard zip(name, bytes[index...]).allSatisfy({ $0 == ($1 >= 65 && $1 <= 90 ? $1 + 32 : $1) }) else {
                continue
            }
            var i = index + name.count
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { continue }
            i += 1
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
            var digits = 0
            var value = 0
            while i < bytes.count, (48...57).contains(bytes[i]) {
                digits += 1
                if digits <= 18 { value = value * 10 + Int(bytes[i] - 48) }
                i += 1
            }
            if digits > 0 && digits <= 18 && value > limit { return true }
        }
        return false
    }

    /// Whether the id's JSON text occurs exactly once in `bytes` (a mutation may have duplicated it).
    static func occursOnce(_ id: String, in bytes: [UInt8]) -> Bool {
        let needle = Array("\"\(id)\"".utf8)
        var found = 0
        var index = 0
        while index + needle.count <= bytes.count {
            if bytes[index] == needle[0], Array(bytes[index..<(index + needle.count)]) == needle { found += 1 }
            index += 1
        }
        return found == 1
    }
}

extension JSONValue {
    var isObject: Bool { if case .object = self { return true }; return false }
}

/// How often each of the fuzzer's string ids (`x-12`, `s-3-40-line`: a lower-case letter, a dash, digits,
/// letters and dashes) occurs quoted in the bytes sent.
struct IDCensus {
    private var counts: [String: Int] = [:]

    mutating func count(in bytes: [UInt8]) {
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "\"") else { index += 1; continue }
            var end = index + 1
            while end < bytes.count, end - index <= 40, Self.isIDByte(bytes[end]) { end += 1 }
            if end < bytes.count, bytes[end] == UInt8(ascii: "\""), end - index > 3,
                (97...122).contains(bytes[index + 1]), bytes[index + 2] == UInt8(ascii: "-")
            {
                counts[String(decoding: bytes[(index + 1)..<end], as: UTF8.self), default: 0] += 1
                index = end + 1
            } else {
                index = end
            }
        }
    }

    /// Occurrences of a string id (numbers and other ids count as once).
    func occurrences(_ id: JSONValue) -> Int { id.stringValue.flatMap { counts[$0] } ?? 1 }

    private static func isIDByte(_ byte: UInt8) -> Bool {
        (97...122).contains(byte) || (48...57).contains(byte) || byte == UInt8(ascii: "-")
    }
}
