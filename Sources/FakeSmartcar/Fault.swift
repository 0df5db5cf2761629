import WireFormats

/// A misbehaviour the fake shows instead of (or on top of) its normal answer, for one request each.
///
/// JSON form (the `/_fake/fault` control endpoint and `Codable`), one object with a `kind`:
/// - `{"kind":"status","status":500,"body":"...","headers":{"X":"y"}}` (`body`, `headers` optional)
/// - `{"kind":"rateLimited","retryAfter":"2"}` (a number is accepted too)
/// - `{"kind":"invalidClientBasicRealm"}`, `{"kind":"htmlError","status":502}`
/// - `{"kind":"stall"}`, `{"kind":"drop"}`, `{"kind":"dropAfterHandling"}`
/// - `{"kind":"delay","seconds":1.5}`
/// - `{"kind":"endlessBody"}`, `{"kind":"hostileAnswer","expiresIn":"1e400","omit":["access_token"]}`
/// - `{"kind":"hold"}` (released by `POST /_fake/release`)
package enum Fault: Sendable, Codable, Equatable {
    /// Any status with any body (JSON content type when the body looks like JSON, unless `headers` says).
    case status(Int, body: String, headers: [String: String] = [:])
    /// 429 with `Retry-After` (seconds or an HTTP date) and Smartcar's v2 `RATE_LIMIT` body.
    case rateLimited(retryAfter: String)
    /// 401 `invalid_client` with `WWW-Authenticate: Basic realm="Smartcar"`: an answer URLSession on Linux
    /// (Swift 6.3.0/6.3.1) hangs on; the agent's libcurl transport reads it, body included.
    case invalidClientBasicRealm
    /// The status with an HTML page, as a proxy or load balancer sends (e.g. 502).
    case htmlError(Int)
    /// Reads the request and never answers, until the client hangs up or the fake stops.
    case stall
    /// Closes the connection without answering; the request has no effect.
    case drop
    /// Handles the request (a code is spent, a refresh token rotated) and then closes the connection
    /// without answering: the client cannot know whether it reached the server.
    case dropAfterHandling
    /// Answers normally after the delay (on top of `Options.latency`).
    case delay(Duration)
    /// Handles the request (a code is spent, a refresh token rotated), then answers 200 with a chunked
    /// body that never ends, until the client hangs up or the fake stops.
    case endlessBody
    /// Handles the request, then answers with its JSON body changed: `expires_in` written as the raw
    /// text `expiresIn` (any JSON number, even one no `Double` holds, or any JSON value) when given, and
    /// the members named in `omit` left out.
    case hostileAnswer(expiresIn: String?, omit: [String])
    /// Handles the request (a code is spent, a refresh token rotated), then keeps the answer back until
    /// `FakeSmartcar.releaseHeld(using:)` sends the held answers one by one in a random order: reordered
    /// answers, as a network or a load balancer may deliver them.
    case hold

    private enum Kind: String, Codable {
        case status, rateLimited, invalidClientBasicRealm, htmlError, stall, drop, dropAfterHandling, delay
        case endlessBody, hostileAnswer, hold
    }

    private enum CodingKeys: String, CodingKey {
        case kind, status, body, headers, retryAfter, seconds, expiresIn, omit
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(Kind.self, forKey: .kind) {
        case .status:
            self = .status(
                try container.decode(Int.self, forKey: .status),
                body: try container.decodeIfPresent(String.self, forKey: .body) ?? "",
                headers: try container.decodeIfPresent([String: String].self, forKey: .headers) ?? [:])
        case .rateLimited:
            if let number = try? container.decode(Int.self, forKey: .retryAfter) {
                self = .rateLimited(retryAfter: String(number))
            } else {
                self = .rateLimited(retryAfter: try container.decode(String.self, forKey: .retryAfter))
            }
        case .invalidClientBasicRealm: self = .invalidClientBasicRealm
        case .htmlError: self = .htmlError(try container.decodeIfPresent(Int.self, forKey: .status) ?? 502)
        case .stall: self = .stall
        case .drop: self = .drop
        case .dropAfterHandling: self = .dropAfterHandling
        case .delay:
            let seconds = try container.decode(Double.self, forKey: .seconds)
            guard seconds >= 0, seconds.isFinite else {
                throw DecodingError.dataCorruptedError(
                    forKey: .seconds, in: container,
                    debugDescription: "delay must be a finite number >= 0")
            }
            self = .delay(.milliseconds(Int64((seconds * 1000).rounded())))
        case .endlessBody: self = .endlessBody
        case .hostileAnswer:
            self = .hostileAnswer(
                expiresIn: try container.decodeIfPresent(String.self, forKey: .expiresIn),
                omit: try container.decodeIfPresent([String].self, forKey: .omit) ?? [])
        case .hold: self = .hold
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .status(let status, let body, let headers):
            try container.encode(Kind.status, forKey: .kind)
            try container.encode(status, forKey: .status)
            try container.encode(body, forKey: .body)
            try container.encode(headers, forKey: .headers)
        case .rateLimited(let retryAfter):
            try container.encode(Kind.rateLimited, forKey: .kind)
            try container.encode(retryAfter, forKey: .retryAfter)
        case .invalidClientBasicRealm: try container.encode(Kind.invalidClientBasicRealm, forKey: .kind)
        case .htmlError(let status):
            try container.encode(Kind.htmlError, forKey: .kind)
            try container.encode(status, forKey: .status)
        case .stall: try container.encode(Kind.stall, forKey: .kind)
        case .drop: try container.encode(Kind.drop, forKey: .kind)
        case .dropAfterHandling: try container.encode(Kind.dropAfterHandling, forKey: .kind)
        case .delay(let duration):
            try container.encode(Kind.delay, forKey: .kind)
            try container.encode(duration.seconds, forKey: .seconds)
        case .endlessBody: try container.encode(Kind.endlessBody, forKey: .kind)
        case .hostileAnswer(let expiresIn, let omit):
            try container.encode(Kind.hostileAnswer, forKey: .kind)
            try container.encodeIfPresent(expiresIn, forKey: .expiresIn)
            try container.encode(omit, forKey: .omit)
        case .hold: try container.encode(Kind.hold, forKey: .kind)
        }
    }

    /// `response` with a JSON object body rewritten as `hostileAnswer` says (other bodies unchanged).
    static func rewrite(_ response: HTTPServerResponse, expiresIn: String?, omit: [String]) -> HTTPServerResponse {
        guard case .object(let members)? = try? JSONParser.parse(bytes: response.body) else { return response }
        var body: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func member(_ key: String, _ raw: [UInt8]) {
            if !first { body.append(UInt8(ascii: ",")) }
            first = false
            JSONText.append(key, to: &body)
            body.append(UInt8(ascii: ":"))
            body.append(contentsOf: raw)
        }
        for (key, value) in members where !omit.contains(key) {
            if key == "expires_in", expiresIn != nil { continue }
            member(key, Array(value.compactText.utf8))
        }
        if let expiresIn, !omit.contains("expires_in") { member("expires_in", Array(expiresIn.utf8)) }
        body.append(UInt8(ascii: "}"))
        var rewritten = response
        rewritten.body = body
        return rewritten
    }

    /// The head and the endless chunk of `endlessBody`.
    static let endlessHead = Array(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n".utf8)
    static let endlessChunk = Array("4000\r\n".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 0x4000) + [13, 10]

    /// The canned answer for the faults that replace the normal one; nil for the others.
    func cannedResponse(requestID: String) -> HTTPServerResponse? {
        switch self {
        case .status(let status, let body, let headers):
            var fields = headers.map { (name: $0.key, value: $0.value) }
            if !headers.keys.contains(where: { $0.lowercased() == "content-type" }) {
                let looksLikeJSON = body.drop(while: \.isWhitespace).first.map { "{[".contains($0) } ?? false
                fields.append(
                    ("Content-Type", looksLikeJSON ? "application/json; charset=utf-8" : "text/plain; charset=utf-8"))
            }
            return HTTPServerResponse(status: status, headers: fields, body: Array(body.utf8))
        case .rateLimited(let retryAfter):
            return .json(
                429,
                SmartcarErrors.v2(
                    type: "RATE_LIMIT", code: "SMARTCAR_API", status: 429,
                    description:
                        "You have reached the throttling rate limit for this vehicle. Please see the retry-after header for when to retry the request.",
                    docURL: "https://smartcar.com/docs/errors/api-errors/rate-limit-errors#smartcar-api",
                    resolution: "RETRY_LATER", requestID: requestID,
                    suggestedUserMessage:
                        "Your vehicle is temporarily unable to connect. Please be patient while we're working to resolve this issue."
                ),
                headers: [("Retry-After", retryAfter)])
        case .invalidClientBasicRealm:
            return FakeService.invalidClient(challenge: true)
        case .htmlError(let status):
            let title = "\(status) \(HTTPServerResponse.reasonPhrase(status))"
            return HTTPServerResponse(
                status: status, contentType: "text/html",
                body:
                    "<html>\r\n<head><title>\(title)</title></head>\r\n<body>\r\n<center><h1>\(title)</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            )
        case .stall, .drop, .dropAfterHandling, .delay, .endlessBody, .hostileAnswer, .hold:
            return nil
        }
    }
}

extension Duration {
    /// The duration as (fractional) seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
