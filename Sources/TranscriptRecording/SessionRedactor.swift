import Foundation
import SmartcarOAuth
import WireFormats

/// Knows where a session's secrets sit and turns each message and upstream exchange into transcript
/// JSON with placeholders: the client secret and Basic credentials, access, refresh and application tokens,
/// authorization codes, Connect states, VINs and Smartcar user ids; the upstream origin and the store path become
/// `{{upstream}}` and `{{store}}`; times and durations the agent computes become wildcards.
/// A value first seen in one place (a token in Smartcar's answer) keeps its placeholder everywhere else.
struct SessionRedactor {
    private(set) var placeholders = Placeholders()

    init(configuration: SmartcarConfiguration, storePath: String?) {
        placeholders.fix(configuration.clientSecret, as: "client_secret")
        placeholders.fix(configuration.clientID, as: "client_id")
        for origin in [
            configuration.connectOrigin, configuration.authOrigin, configuration.iamOrigin, configuration.apiOrigin,
        ] {
            placeholders.fix(origin.absoluteString, as: "upstream")
        }
        placeholders.fix(storePath, as: "store")
    }

    // MARK: Messages

    /// A message from the client: tokens it imports, codes it exchanges, states and VINs it chooses.
    mutating func clientMessage(_ message: JSONValue) -> JSONValue {
        if case .array(let items) = message { return .array(items.map { clientMessage($0) }) }
        let method = message["method"]?.stringValue
        return walk(message) { redactor, key, value in
            guard case .string(let text) = value else { return nil }
            switch key {
            case "accessToken": return .string(redactor.placeholders.placeholder(for: text, kind: "access"))
            case "refreshToken": return .string(redactor.placeholders.placeholder(for: text, kind: "refresh"))
            case "code" where method == "exchangeCode":
                return .string(redactor.placeholders.placeholder(for: text, kind: "code"))
            case "state": return .string(redactor.placeholders.placeholder(for: text, kind: "state"))
            case "singleSelectVIN": return .string(redactor.placeholders.placeholder(for: text, kind: "vin"))
            default: return nil
            }
        }
    }

    /// A message from the agent: tokens and states it hands out, and the times it computes from its clock.
    /// Members are put in a fixed order (the agent's encoder has none), so two recordings of one session diff cleanly.
    mutating func agentMessage(_ message: JSONValue) -> JSONValue {
        Self.canonicalOrder(
            walk(message) { redactor, key, value in
                switch (key, value) {
                case ("accessToken", .string(let text)):
                    return .string(redactor.placeholders.placeholder(for: text, kind: "access"))
                case ("state", .string(let text)) where !["valid", "expired", "reauthRequired"].contains(text):
                    return .string(redactor.placeholders.placeholder(for: text, kind: "state"))
                case ("vin", .string(let text)):
                    return .string(redactor.placeholders.placeholder(for: text, kind: "vin"))
                case ("expiresAt", .string), ("refreshExpiresAt", .string), ("lastRefreshedAt", .string),
                    ("now", .string):
                    return "{{*time}}"
                case ("expiresIn", _), ("inFlight", _): return "{{*int}}"
                case ("uptimeSeconds", _): return "{{*number}}"
                default: return nil
                }
            })
    }

    /// `jsonrpc`, `id`, `method`, then the rest; `code`, `message`, `data` in an error; `kind` first in its
    /// data; every other object sorted by key.
    static func canonicalOrder(_ value: JSONValue, key: String? = nil) -> JSONValue {
        switch value {
        case .array(let items):
            return .array(items.map { canonicalOrder($0, key: key) })
        case .object(let members):
            let first: [String]
            switch key {
            case nil: first = ["jsonrpc", "id", "method", "params", "result", "error"]
            case "error": first = ["code", "message", "data"]
            case "data": first = ["kind"]
            default: first = []
            }
            let rank = { (name: String) in first.firstIndex(of: name) ?? first.count }
            let ordered = members.sorted {
                rank($0.key) != rank($1.key) ? rank($0.key) < rank($1.key) : $0.key < $1.key
            }
            return .object(JSONObject(ordered.map { ($0.key, canonicalOrder($0.value, key: $0.key)) }))
        default:
            return value
        }
    }

    // MARK: Upstream

    /// The request as an `upstream` step's `request` pattern: method, path, query, content type, the
    /// credentials as `basicAuth` or a bearer placeholder, and the form.
    mutating func request(_ request: HTTPRequest) -> JSONValue {
        var members: JSONObject = ["method": .string(request.method), "path": .string(request.url.path)]
        if let query = URLComponents(url: request.url, resolvingAgainstBaseURL: false)?.percentEncodedQuery,
            !query.isEmpty
        {
            members["query"] = .object(JSONObject(FormCoding.decode(query).map { ($0.name, .string(text($0.value))) }))
        }
        var headers: JSONObject = [:]
        var credentials: JSONValue?
        if let type = request.header("Content-Type") { headers["content-type"] = .string(type) }
        if let authorization = request.header("Authorization") {
            let parts = authorization.split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                headers["authorization"] = .string("Bearer " + placeholders.placeholder(for: parts[1], kind: "access"))
            } else if parts.count == 2, parts[0].lowercased() == "basic", let data = Data(base64Encoded: parts[1]),
                let pair = String(data: data, encoding: .utf8), let colon = pair.firstIndex(of: ":")
            {
                let user = String(pair[..<colon]), password = String(pair[pair.index(after: colon)...])
                credentials = .object([
                    "user": .string(placeholders.placeholder(for: user, kind: "client_id")),
                    "password": .string(placeholders.placeholder(for: password, kind: "client_secret")),
                ])
            } else {
                headers["authorization"] = .string(placeholders.placeholder(for: authorization, kind: "authorization"))
            }
        }
        if !headers.isEmpty { members["headers"] = .object(headers) }
        if let credentials { members["basicAuth"] = credentials }
        let body = request.body.map { String(decoding: $0, as: UTF8.self) } ?? ""
        if request.header("Content-Type")?.hasPrefix("application/x-www-form-urlencoded") == true {
            members["form"] = .object(
                JSONObject(
                    FormCoding.decode(body).map { name, value in
                        switch name {
                        case "code": (name, .string(placeholders.placeholder(for: value, kind: "code")))
                        case "refresh_token": (name, .string(placeholders.placeholder(for: value, kind: "refresh")))
                        case "client_secret":
                            (name, .string(placeholders.placeholder(for: value, kind: "client_secret")))
                        default: (name, .string(text(value)))
                        }
                    }))
        } else if !body.isEmpty {
            members["body"] = .string(text(body))
        }
        return .object(members)
    }

    /// The answer as an `upstream` step's `response`: status, the headers that matter, the body (tokens
    /// replaced). A failure of the network becomes a fault the fake can replay.
    mutating func response(_ outcome: Result<HTTPResponse, any Error>, path: String) -> JSONValue {
        let response: HTTPResponse
        switch outcome {
        case .success(let answer): response = answer
        case .failure(let error as TransportError) where error.kind == .timedOut: return ["fault": "stall"]
        case .failure(is CancellationError): return ["fault": "stall"]
        case .failure: return ["fault": "drop"]
        }
        var members: JSONObject = ["status": .int(Int64(response.status))]
        let kept = ["content-type", "retry-after", "www-authenticate", "sc-request-id"]
        let headers = JSONObject(kept.compactMap { name in response.header(name).map { (name, .string(text($0))) } })
        if !headers.isEmpty { members["headers"] = .object(headers) }
        let body = String(decoding: response.body, as: UTF8.self)
        if let json = try? JSONParser.parse(body) {
            let tokenKind = path == "/oauth2/token" ? "app_token" : "access"
            members["json"] = walk(json) { redactor, key, value in
                guard case .string(let token) = value else { return nil }
                switch key {
                case "access_token": return .string(redactor.placeholders.placeholder(for: token, kind: tokenKind))
                case "refresh_token": return .string(redactor.placeholders.placeholder(for: token, kind: "refresh"))
                // The Smartcar user id (`GET /v2.0/user`) names a person: not a secret, but not for a public file.
                case "id" where path == "/v2.0/user":
                    return .string(redactor.placeholders.placeholder(for: token, kind: "user"))
                default: return nil
                }
            }
        } else if !body.isEmpty {
            members["body"] = .string(text(body))
        }
        return .object(members)
    }

    // MARK: Strings

    /// Any other string: the `code`, `state` and `vin` of a URL's query become placeholders, then every
    /// value seen before is replaced wherever it appears.
    mutating func text(_ string: String) -> String {
        placeholders.replacingKnown(in: redactingURLQuery(string))
    }

    private mutating func redactingURLQuery(_ string: String) -> String {
        guard let question = string.firstIndex(of: "?"), string[..<question].contains("://") else { return string }
        let fragmentStart = string[question...].firstIndex(of: "#") ?? string.endIndex
        let query = string[string.index(after: question)..<fragmentStart]
        let kinds = ["code": "code", "state": "state", "vin": "vin", "single_select_vin": "vin"]
        let parameters = query.split(separator: "&", omittingEmptySubsequences: false).map { parameter -> String in
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, let kind = kinds[FormCoding.unescape(pair[0])], !pair[1].isEmpty else {
                return String(parameter)
            }
            return "\(pair[0])=" + placeholders.placeholder(for: FormCoding.unescape(pair[1]), kind: kind)
        }
        return string[...question] + parameters.joined(separator: "&") + string[fragmentStart...]
    }

    /// Rebuilds `value`; `rule` may replace the value of a member (given its key), and every string it
    /// leaves alone goes through `text`.
    private mutating func walk(
        _ value: JSONValue, key: String? = nil,
        _ rule: (inout SessionRedactor, String, JSONValue) -> JSONValue?
    ) -> JSONValue {
        if let key, let replaced = rule(&self, key, value) { return replaced }
        switch value {
        case .string(let string): return .string(text(string))
        case .array(let items): return .array(items.map { walk($0, key: key, rule) })
        case .object(let members):
            return .object(JSONObject(members.map { ($0.key, walk($0.value, key: $0.key, rule)) }))
        default: return value
        }
    }
}
