import Foundation
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One scenario: a header (how to start the agent) and the steps to play, as read from a `.transcript`
/// file (a sequence of JSON values, `#` comments; see Protocol/transcripts/README.md).
package struct Transcript: Sendable {
    /// How the agent is started: arguments and environment (templates: `{{upstream}}`, `{{store}}`…).
    package struct Header: Sendable {
        package var arguments: [String]
        package var environment: [(name: String, value: String)]
        /// Seconds each waiting step waits by default.
        package var timeout: Double?
    }

    /// Messages are framed one per line, or with an LSP `Content-Length` header.
    package enum Framing: String, Sendable {
        case line
        case contentLength = "content-length"
    }

    package enum Action: Sendable {
        case send(JSONValue, framing: Framing)
        case sendRaw([UInt8])
        case expect(JSONValue, framing: Framing?)
        case upstream(request: JSONValue, response: JSONValue)
        case advanceClock(Double)
        case waitForUpstream(Int)
        case assertStore(JSONValue)
        case lockStore(Bool)
        case start(arguments: [String]?, environment: [(name: String, value: String)]?)
        case closeInput
        case signal(Int32)
        case expectExit(Int32)
        /// A browser's GET of `url` (a template), its answer's `status` and text (`page`, a pattern) checked.
        case browse(url: String, status: Int, page: String?)
    }

    package struct Step: Sendable {
        package var line: Int
        /// The agent process the step addresses (`A` unless the step says `"agent"`).
        package var agent: String
        package var action: Action
        /// Seconds this step may wait, overriding the header's `timeout`.
        package var within: Double?
    }

    /// Where the transcript came from, for reports (`path:line`).
    package var name: String
    package var header: Header
    package var steps: [Step]

    /// The interactions of the upstream pool, in file order.
    var interactions: [(line: Int, request: JSONValue, response: JSONValue)] {
        steps.compactMap { step in
            if case .upstream(let request, let response) = step.action { return (step.line, request, response) }
            return nil
        }
    }

    /// A transcript that cannot be played: bad JSON, an unknown step, a malformed placeholder.
    package struct LoadError: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    package static func load(path: String) throws(LoadError) -> Transcript {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw LoadError(description: "\(path): cannot be read (\(error.localizedDescription))")
        }
        return try parse(text, name: path)
    }

    package static func parse(_ text: String, name: String) throws(LoadError) -> Transcript {
        let values: [(value: JSONValue, line: Int)]
        do { values = try JSONParser.sequence(text, comments: true) } catch {
            throw LoadError(description: "\(name): \(error)")
        }
        guard let first = values.first else {
            throw LoadError(description: "\(name): empty; the first value must be the header")
        }
        let reader = StepReader(name: name)
        let header = try reader.header(first.value, line: first.line)
        var steps: [Step] = []
        for (value, line) in values.dropFirst() { steps.append(try reader.step(value, line: line)) }
        return Transcript(name: name, header: header, steps: steps)
    }
}

/// Turns the JSON values of a transcript into steps, checking every member so a typo is an error with
/// its line, not a silently ignored step.
private struct StepReader {
    let name: String

    static let verbs = [
        "send", "sendRaw", "expect", "upstream", "advanceClock", "waitForUpstream", "assertStore", "lockStore",
        "start", "closeInput", "signal", "expectExit", "browse",
    ]

    func header(_ value: JSONValue, line: Int) throws(Transcript.LoadError) -> Transcript.Header {
        guard case .object(let members) = value, !members.contains(where: { Self.verbs.contains($0.key) }) else {
            throw error(
                line, "the first value must be the header, e.g. {\"args\": [\"--store\", \"memory\"], \"env\": {...}}")
        }
        try allow(members, ["args", "env", "timeout"], line, "the header")
        return Transcript.Header(
            arguments: try strings(value["args"], line, "args") ?? [],
            environment: try environment(value["env"], line) ?? [],
            timeout: try seconds(value["timeout"], line, "timeout"))
    }

    func step(_ value: JSONValue, line: Int) throws(Transcript.LoadError) -> Transcript.Step {
        guard case .object(let members) = value else {
            throw error(line, "a step must be an object, not \(value.kindName)")
        }
        let verbs = members.filter { Self.verbs.contains($0.key) }
        guard verbs.count == 1, let verb = verbs.first else {
            throw error(
                line,
                verbs.isEmpty
                    ? "a step needs one of \(Self.verbs.joined(separator: ", "))"
                    : "a step has one verb, not \(verbs.map(\.key).joined(separator: " and "))")
        }
        let agent: String
        if let named = value["agent"] {
            guard let text = named.stringValue, Template.isName(text) else {
                throw error(line, "\"agent\" must be a name such as \"B\"")
            }
            agent = text
        } else {
            agent = "A"
        }
        let within = try seconds(value["within"], line, "within")
        let action: Transcript.Action
        switch verb.key {
        case "send":
            try allow(members, ["send", "agent", "framing"], line, "a send step")
            guard case .object = verb.value else {
                throw error(line, "send takes a message object (use sendRaw for anything else)")
            }
            try checkTemplates(verb.value, line)
            action = .send(verb.value, framing: try framing(value["framing"], line) ?? .line)
        case "sendRaw":
            try allow(members, ["sendRaw", "agent"], line, "a sendRaw step")
            action = .sendRaw(try rawBytes(verb.value, line))
        case "expect":
            try allow(members, ["expect", "agent", "framing", "within"], line, "an expect step")
            try checkExpectation(verb.value, line)
            try checkTemplates(verb.value, line)
            action = .expect(verb.value, framing: try framing(value["framing"], line))
        case "upstream":
            try allow(members, ["upstream"], line, "an upstream step")
            let (request, response) = try interaction(verb.value, line)
            action = .upstream(request: request, response: response)
        case "advanceClock":
            try allow(members, ["advanceClock", "agent", "within"], line, "an advanceClock step")
            guard let seconds = verb.value.numberValue else {
                throw error(line, "advanceClock takes a number of seconds")
            }
            action = .advanceClock(seconds)
        case "waitForUpstream":
            try allow(members, ["waitForUpstream", "within"], line, "a waitForUpstream step")
            guard let count = verb.value.intValue, count > 0 else {
                throw error(line, "waitForUpstream takes a number of requests (1 or more)")
            }
            action = .waitForUpstream(Int(count))
        case "assertStore":
            try allow(members, ["assertStore"], line, "an assertStore step")
            guard case .object = verb.value, verb.value["key"]?.stringValue != nil else {
                throw error(line, "assertStore takes an object with at least a \"key\"")
            }
            let allowed = [
                "key", "exists", "generation", "needsReauth", "accessToken", "refreshToken", "expiresAt",
                "...",
            ]
            try allow(verb.value.objectValue ?? [:], allowed, line, "assertStore")
            try checkTemplates(verb.value, line)
            action = .assertStore(verb.value)
        case "lockStore":
            try allow(members, ["lockStore"], line, "a lockStore step")
            guard let flag = verb.value.boolValue else {
                throw error(line, "lockStore takes true (take the lock) or false (release it)")
            }
            action = .lockStore(flag)
        case "start":
            try allow(members, ["start", "args", "env"], line, "a start step")
            guard let name = verb.value.stringValue, Template.isName(name) else {
                throw error(line, "start takes the new agent's name, e.g. \"B\"")
            }
            return Transcript.Step(
                line: line, agent: name,
                action: .start(
                    arguments: try strings(value["args"], line, "args"),
                    environment: try environment(value["env"], line)),
                within: nil)
        case "closeInput":
            try allow(members, ["closeInput", "agent"], line, "a closeInput step")
            action = .closeInput
        case "signal":
            try allow(members, ["signal", "agent"], line, "a signal step")
            switch verb.value.stringValue {
            case "TERM": action = .signal(SIGTERM)
            case "INT": action = .signal(SIGINT)
            case "KILL": action = .signal(SIGKILL)
            default: throw error(line, "signal takes \"TERM\", \"INT\" or \"KILL\"")
            }
        case "expectExit":
            try allow(members, ["expectExit", "agent", "within"], line, "an expectExit step")
            guard let code = verb.value.intValue, (0...255).contains(code) else {
                throw error(line, "expectExit takes an exit code from 0 to 255")
            }
            action = .expectExit(Int32(code))
        case "browse":
            try allow(members, ["browse", "status", "page", "within"], line, "a browse step")
            guard let url = verb.value.stringValue, let status = value["status"]?.intValue else {
                throw error(line, "browse takes a URL and the \"status\" its answer must have (and maybe a \"page\")")
            }
            try checkTemplates(verb.value, line)
            if let page = value["page"] {
                guard page.stringValue != nil else { throw error(line, "browse's \"page\" is a text pattern") }
                try checkTemplates(page, line)
            }
            action = .browse(url: url, status: Int(status), page: value["page"]?.stringValue)
        default:
            throw error(line, "unknown step \(verb.key)")
        }
        return Transcript.Step(line: line, agent: agent, action: action, within: within)
    }

    // MARK: Parts

    private func checkExpectation(_ value: JSONValue, _ line: Int) throws(Transcript.LoadError) {
        switch value {
        case .object:
            if let id = value["id"] {
                if let text = id.stringValue, !((try? Template(text))?.isPlain ?? false) {
                    throw error(line, "an expected response's id must be written out, not a placeholder")
                }
            } else if value["method"]?.stringValue == nil {
                throw error(
                    line,
                    "expect takes a response (with an \"id\"), a notification (with a \"method\" and no \"id\") or a batch (an array)"
                )
            }
        case .array(let items):
            guard !items.isEmpty, items.allSatisfy({ $0["id"] != nil }) else {
                throw error(line, "an expected batch is a non-empty array of responses, each with an \"id\"")
            }
        default:
            throw error(line, "expect takes a message object or a batch array, not \(value.kindName)")
        }
    }

    private func interaction(_ value: JSONValue, _ line: Int) throws(Transcript.LoadError) -> (JSONValue, JSONValue) {
        guard case .object(let members) = value, let request = value["request"], let response = value["response"] else {
            throw error(line, "upstream takes {\"request\": {...}, \"response\": {...}}")
        }
        try allow(members, ["request", "response"], line, "upstream")
        guard case .object(let requestMembers) = request, request["method"]?.stringValue != nil,
            request["path"]?.stringValue != nil
        else {
            throw error(line, "an upstream request needs at least \"method\" and \"path\"")
        }
        try allow(
            requestMembers, ["method", "path", "query", "headers", "basicAuth", "form", "json", "body"], line,
            "an upstream request")
        guard case .object(let responseMembers) = response else {
            throw error(line, "an upstream response must be an object")
        }
        if let fault = response["fault"] {
            try allow(responseMembers, ["fault"], line, "a fault response")
            guard ["drop", "stall"].contains(fault.stringValue ?? "") else {
                throw error(line, "fault is \"drop\" or \"stall\"")
            }
        } else {
            try allow(responseMembers, ["status", "headers", "json", "body", "delay"], line, "an upstream response")
            guard let status = response["status"]?.intValue, (100...599).contains(status) else {
                throw error(line, "an upstream response needs a \"status\" (or a \"fault\")")
            }
            if response["json"] != nil && response["body"] != nil {
                throw error(line, "an upstream response has \"json\" or \"body\", not both")
            }
            if let body = response["body"], body.stringValue == nil {
                throw error(line, "\"body\" is a string (use \"json\" for JSON)")
            }
            if let headers = response["headers"],
                !(headers.objectValue?.allSatisfy { $0.value.stringValue != nil } ?? false)
            {
                throw error(line, "response \"headers\" is an object of strings")
            }
            _ = try seconds(response["delay"], line, "delay")
        }
        try checkTemplates(request, line)
        try checkTemplates(response, line)
        return (request, response)
    }

    private func rawBytes(_ value: JSONValue, _ line: Int) throws(Transcript.LoadError) -> [UInt8] {
        let parts = value.arrayValue ?? [value]
        var bytes: [UInt8] = []
        for part in parts {
            if let text = part.stringValue {
                bytes += Array(text.utf8)
            } else if let repeated = part["repeat"]?.stringValue, let times = part["times"]?.intValue,
                (0...(64 << 20)).contains(times)
            {
                bytes += Array(repeating: Array(repeated.utf8), count: Int(times)).flatMap { $0 }
            } else {
                throw error(
                    line, "sendRaw takes a string, or an array of strings and {\"repeat\": \"x\", \"times\": N}")
            }
        }
        return bytes
    }

    private func checkTemplates(_ value: JSONValue, _ line: Int) throws(Transcript.LoadError) {
        switch value {
        case .string(let text):
            do { _ = try Template(text) } catch let failure { throw error(line, failure.description) }
        case .array(let items): for item in items { try checkTemplates(item, line) }
        case .object(let members): for member in members { try checkTemplates(member.value, line) }
        default: break
        }
    }

    private func framing(_ value: JSONValue?, _ line: Int) throws(Transcript.LoadError) -> Transcript.Framing? {
        guard let value else { return nil }
        guard let framing = value.stringValue.flatMap(Transcript.Framing.init(rawValue:)) else {
            throw error(line, "framing is \"line\" or \"content-length\"")
        }
        return framing
    }

    private func strings(_ value: JSONValue?, _ line: Int, _ what: String) throws(Transcript.LoadError) -> [String]? {
        guard let value else { return nil }
        guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
            throw error(line, "\"\(what)\" is an array of strings")
        }
        for item in items { try checkTemplates(item, line) }
        return items.compactMap(\.stringValue)
    }

    private func environment(
        _ value: JSONValue?,
        _ line: Int
    ) throws(Transcript.LoadError) -> [(name: String, value: String)]? {
        guard let value else { return nil }
        guard let members = value.objectValue, members.allSatisfy({ $0.value.stringValue != nil }) else {
            throw error(line, "\"env\" is an object of strings")
        }
        for member in members { try checkTemplates(member.value, line) }
        return members.map { ($0.key, $0.value.stringValue!) }
    }

    private func seconds(_ value: JSONValue?, _ line: Int, _ what: String) throws(Transcript.LoadError) -> Double? {
        guard let value else { return nil }
        guard let seconds = value.numberValue, seconds >= 0, seconds <= 600 else {
            throw error(line, "\"\(what)\" is a number of seconds (0 to 600)")
        }
        return seconds
    }

    private func allow(
        _ members: JSONObject, _ allowed: [String], _ line: Int,
        _ what: String
    ) throws(Transcript.LoadError) {
        if let unknown = members.first(where: { !allowed.contains($0.key) }) {
            let list = allowed.joined(separator: ", ")
            throw error(line, "unknown member \(JSONText.quoted(unknown.key)) in \(what) (allowed: \(list))")
        }
    }

    private func error(_ line: Int, _ message: String) -> Transcript.LoadError {
        Transcript.LoadError(description: "\(name):\(line): \(message)")
    }
}
