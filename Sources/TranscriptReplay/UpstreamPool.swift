import Dispatch
import FakeSmartcar
import Foundation
import Synchronization
import WireFormats

/// The upstream side of a scenario: every `upstream` step of the transcript, served by the fake's
/// `ScriptedServer`. A request is answered by the first interaction, in file order, that is not used yet
/// and whose request pattern matches; each serves one request. A request nothing matches is answered 500
/// and reported with a diff against the closest interaction; an interaction never used is reported too.
final class UpstreamPool: Sendable {
    private struct Interaction: Sendable {
        let line: Int
        let request: JSONValue
        let response: JSONValue
        /// The number of the request it served (1 for the first the fake received).
        var usedBy: Int?
    }

    private struct State: Sendable {
        var interactions: [Interaction]
        var received = 0
        var unexpected: [String] = []
        /// Every request as received, for the run's log.
        var log: [String] = []
    }

    private let state: Mutex<State>
    private let bindings: Bindings
    /// Signalled on every request; only the harness's one thread waits on it.
    private let changed = DispatchSemaphore(value: 0)

    init(_ interactions: [(line: Int, request: JSONValue, response: JSONValue)], bindings: Bindings) {
        state = Mutex(
            State(
                interactions: interactions.map {
                    Interaction(line: $0.line, request: $0.request, response: $0.response)
                }))
        self.bindings = bindings
    }

    /// The `ScriptedServer` handler.
    func handle(_ request: RecordedRequest) -> ScriptedServer.Reply {
        let actual = Self.describe(request)
        let response = state.withLock { state -> JSONValue? in
            state.received += 1
            state.log.append(Self.show(actual))
            let number = state.received
            for index in state.interactions.indices where state.interactions[index].usedBy == nil {
                if bindings.with({ Self.match(state.interactions[index].request, actual, &$0) }) == nil {
                    state.interactions[index].usedBy = number
                    return state.interactions[index].response
                }
            }
            state.unexpected.append(unexpectedReport(actual, number: number, state))
            return nil
        }
        defer { changed.signal() }
        if let response {
            switch Self.reply(response, bindings) {
            case .success(let reply): return reply
            case .failure(let failure):
                state.withLock { $0.unexpected.append("the upstream response could not be filled: \(failure)") }
                return .respond(status: 500, headers: [], body: [], delay: .zero)
            }
        }
        let body: JSONValue = [
            "error": "unexpected_request", "error_description": "the transcript has no interaction for this request",
        ]
        return .respond(
            status: 500, headers: [("Content-Type", "application/json")], body: Array(body.compactText.utf8),
            delay: .zero)
    }

    /// Waits until `count` requests have arrived in all; returns how many did.
    func waitForRequests(_ count: Int, until deadline: DispatchTime) -> Int {
        while true {
            let received = state.withLock { $0.received }
            if received >= count { return received }
            if changed.wait(timeout: deadline) == .timedOut { return state.withLock { $0.received } }
        }
    }

    var unexpectedRequests: [String] { state.withLock { $0.unexpected } }
    var requests: [String] { state.withLock { $0.log } }

    /// Interactions never used (those written before `line` only, when given).
    func unused(before line: Int? = nil) -> [String] {
        state.withLock { state in
            state.interactions.filter { $0.usedBy == nil && $0.line < (line ?? Int.max) }.map { interaction in
                "the upstream interaction at line \(interaction.line) (\(Self.summary(interaction.request))) was never requested"
            }
        }
    }

    // MARK: Matching

    /// A request as the patterns see it: `method`, `path`, `query`, `headers` (lower-case names),
    /// `basicAuth` (`user`, `password`) for Basic credentials, `form` for a form body, `json` for a JSON
    /// body, and `body` (the raw text).
    static func describe(_ request: RecordedRequest) -> JSONValue {
        var members: JSONObject = ["method": .string(request.method), "path": .string(request.path)]
        members["query"] = sortedObject(request.query)
        members["headers"] = sortedObject(request.headers)
        if let credentials = basicCredentials(request.headers["authorization"]) {
            members["basicAuth"] = ["user": .string(credentials.user), "password": .string(credentials.password)]
        }
        if !request.form.isEmpty { members["form"] = sortedObject(request.form) }
        if let json = try? JSONParser.parse(request.body), !request.body.isEmpty { members["json"] = json }
        members["body"] = .string(request.body)
        return .object(members)
    }

    /// Matches a request pattern: only the parts it names are checked; `headers` checks only the headers
    /// it lists (names in any case); `query`, `form`, `json` and `basicAuth` match as whole values.
    static func match(_ pattern: JSONValue, _ actual: JSONValue, _ bindings: inout [String: JSONValue]) -> Mismatch? {
        var working = bindings
        for member in pattern.objectValue ?? [:] {
            if member.key == "headers" {
                for header in member.value.objectValue ?? [:] {
                    let name = header.key.lowercased()
                    guard let value = actual["headers"]?[name] else {
                        return Mismatch(
                            path: "request.headers",
                            problem: "header \(name) is missing (expected \(Matcher.show(header.value)))")
                    }
                    if let mismatch = Matcher.match(
                        header.value, value, path: "request.headers.\(name)", binding: false, bindings: &working)
                    {
                        return mismatch
                    }
                }
                continue
            }
            guard let value = actual[member.key] else {
                return Mismatch(
                    path: "request",
                    problem: "the request has no \(member.key) (expected \(Matcher.show(member.value)))")
            }
            if let mismatch = Matcher.match(
                member.value, value, path: "request.\(member.key)", binding: false, bindings: &working)
            {
                return mismatch
            }
        }
        bindings = working
        return nil
    }

    private func unexpectedReport(_ actual: JSONValue, number: Int, _ state: State) -> String {
        var lines = ["unexpected upstream request (request \(number)): \(Self.show(actual))"]
        let sameEndpoint = { (interaction: Interaction) in
            interaction.request["method"] == actual["method"] && interaction.request["path"] == actual["path"]
        }
        let wouldMatch = { (interaction: Interaction) in
            self.bindings.with { values in
                var copy = values
                return Self.match(interaction.request, actual, &copy) == nil
            }
        }
        if let used = state.interactions.first(where: { $0.usedBy != nil && sameEndpoint($0) && wouldMatch($0) }) {
            lines.append(
                "it matches the interaction at line \(used.line), which already served request \(used.usedBy!): each interaction serves one request (is a call doubled?)"
            )
        }
        let candidates = state.interactions.filter { $0.usedBy == nil }
        if let closest = candidates.first(where: sameEndpoint) ?? candidates.first {
            let mismatch = bindings.with { values in
                var copy = values
                return Self.match(closest.request, actual, &copy)
            }
            lines.append(
                "closest unused interaction, line \(closest.line): \(mismatch.map(\.description) ?? "matches now")")
        } else {
            lines.append(
                state.interactions.isEmpty
                    ? "the transcript has no upstream interaction"
                    : "every interaction of the transcript was already used")
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Answering

    static func reply(_ response: JSONValue, _ bindings: Bindings) -> Result<ScriptedServer.Reply, Filler.Failure> {
        switch response["fault"]?.stringValue {
        case "drop": return .success(.drop)
        case "stall": return .success(.stall)
        default: break
        }
        var headers: [(name: String, value: String)] = []
        for header in response["headers"]?.objectValue ?? [:] {
            switch bindings.fillString(header.value.stringValue ?? "", path: "response.headers.\(header.key)") {
            case .success(let value): headers.append((header.key, value))
            case .failure(let failure): return .failure(failure)
            }
        }
        var body: [UInt8] = []
        if let json = response["json"] {
            switch bindings.fill(json) {
            case .success(let filled): body = Array(filled.compactText.utf8)
            case .failure(let failure): return .failure(failure)
            }
            if !headers.contains(where: { $0.name.lowercased() == "content-type" }) {
                headers.append(("Content-Type", "application/json"))
            }
        } else if let text = response["body"]?.stringValue {
            switch bindings.fillString(text, path: "response.body") {
            case .success(let filled): body = Array(filled.utf8)
            case .failure(let failure): return .failure(failure)
            }
        }
        let delay = response["delay"]?.numberValue ?? 0
        return .success(
            .respond(
                status: Int(response["status"]?.intValue ?? 200), headers: headers, body: body,
                delay: .milliseconds(Int64((delay * 1000).rounded()))))
    }

    // MARK: Helpers

    private static func sortedObject(_ dictionary: [String: String]) -> JSONValue {
        .object(JSONObject(dictionary.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
    }

    private static func basicCredentials(_ header: String?) -> (user: String, password: String)? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic", let data = Data(base64Encoded: String(parts[1])),
            let pair = String(data: data, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        else { return nil }
        return (String(pair[..<colon]), String(pair[pair.index(after: colon)...]))
    }

    /// `POST /oauth/token` and the form's grant type, for one-line mentions.
    static func summary(_ request: JSONValue) -> String {
        let grant = request["form"]?["grant_type"]?.stringValue.map { " grant_type=\($0)" } ?? ""
        return "\(request["method"]?.stringValue ?? "?") \(request["path"]?.stringValue ?? "?")\(grant)"
    }

    /// A request for a report: what identifies it, without the raw body when it was decoded.
    private static func show(_ actual: JSONValue) -> String {
        var members: JSONObject = [:]
        for member in actual.objectValue ?? [:] {
            switch member.key {
            case "headers":
                if let authorization = member.value["authorization"], actual["basicAuth"] == nil {
                    members["headers"] = .object(["authorization": authorization])
                }
            case "query" where member.value.objectValue?.isEmpty ?? true: continue
            case "body" where actual["form"] != nil || actual["json"] != nil || member.value == "": continue
            default: members.append(member)
            }
        }
        return JSONValue.object(members).inlineText
    }
}
