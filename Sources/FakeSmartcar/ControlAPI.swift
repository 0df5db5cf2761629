import Foundation

/// Control over HTTP for tests in other processes (pytest, shell). Never recorded or counted, never faulted.
///
/// - `GET /_fake/requests` → JSON array of `RecordedRequest`
/// - `GET /_fake/counts` → `{"authorize":0,"token":2,"appToken":0,"user":1}`
/// - `POST /_fake/fault` `{"fault":<Fault JSON>,"endpoint":"token","times":1}` (`endpoint`, `times` optional) → `{"ok":true}`
/// - `POST /_fake/mint` `{"userID":"u"}` → `{"accessToken":…,"refreshToken":…,"userID":"u"}`
/// - `POST /_fake/code` `{"redirectURI":…,"userID":…}` (both optional) → `{"code":…}`
/// - `POST /_fake/revoke` `{"userID":"u"}` → kills that user's tokens → `{"revoked":2}`
/// - `POST /_fake/release` → sends the answers `hold` kept, one by one in a random order →
///   `{"released":["<SC-Request-Id>",…]}` in the order they went
/// - `POST /_fake/reset` → forgets recorded requests, counts and queued faults → `{"ok":true}`
/// Errors: 400/404/405 with `{"error":"…"}`.
enum ControlAPI {
    static let prefix = "/_fake/"

    struct FaultRequest: Decodable {
        var fault: Fault
        var endpoint: Endpoint?
        var times: Int?
    }

    struct MintRequest: Decodable {
        var userID: String?
    }

    struct MintResponse: Encodable {
        var accessToken: String
        var refreshToken: String
        var userID: String
    }

    struct CodeRequest: Decodable {
        var redirectURI: String?
        var userID: String?
    }

    struct CodeResponse: Encodable {
        var code: String
    }

    struct RevokeRequest: Decodable {
        var userID: String
    }

    struct RevokeResponse: Encodable {
        var revoked: Int
    }

    struct ReleaseResponse: Encodable {
        var released: [String]
    }

    struct OK: Encodable {
        var ok = true
    }
}

extension FakeService {
    func control(_ request: HTTPServerRequest) -> HTTPServerResponse {
        let route = String(request.path.dropFirst(ControlAPI.prefix.count))
        let method = ["requests", "counts"].contains(route) ? "GET" : "POST"
        guard ["requests", "counts", "fault", "mint", "code", "revoke", "release", "reset"].contains(route) else {
            return Self.controlError(404, "unknown control path \(request.path)")
        }
        guard request.method == method else { return Self.controlError(405, "use \(method) for \(request.path)") }
        do {
            switch route {
            case "requests":
                return try Self.controlJSON(state.withLock { $0.log })
            case "counts":
                let counts = state.withLock { $0.counts }
                return try Self.controlJSON(
                    Dictionary(uniqueKeysWithValues: Endpoint.allCases.map { ($0.rawValue, counts[$0] ?? 0) }))
            case "fault":
                let body = try Self.decode(ControlAPI.FaultRequest.self, request.body)
                let times = body.times ?? 1
                guard times > 0 else { return Self.controlError(400, "times must be at least 1") }
                inject(body.fault, on: body.endpoint, times: times)
                return try Self.controlJSON(ControlAPI.OK())
            case "mint":
                let userID = try Self.decode(ControlAPI.MintRequest.self, request.body).userID ?? "user-1"
                let pair = mintTokens(userID: userID, clientID: options.clientID)
                return try Self.controlJSON(
                    ControlAPI.MintResponse(
                        accessToken: pair.accessToken,
                        refreshToken: pair.refreshToken, userID: userID))
            case "code":
                let body = try Self.decode(ControlAPI.CodeRequest.self, request.body)
                let code = issueCode(
                    redirectURI: body.redirectURI, userID: body.userID ?? "user-1", clientID: options.clientID)
                return try Self.controlJSON(ControlAPI.CodeResponse(code: code))
            case "revoke":
                let userID = try Self.decode(ControlAPI.RevokeRequest.self, request.body).userID
                return try Self.controlJSON(ControlAPI.RevokeResponse(revoked: revokeTokens(userID: userID)))
            case "release":
                var generator = SystemRandomNumberGenerator()
                let released = releaseHeld(using: &generator)
                return try Self.controlJSON(ControlAPI.ReleaseResponse(released: released))
            default:  // "reset"
                reset()
                return try Self.controlJSON(ControlAPI.OK())
            }
        } catch let error as DecodingError {
            return Self.controlError(400, "invalid JSON body: \(Self.describe(error))")
        } catch {
            return Self.controlError(500, "could not encode the answer")
        }
    }

    /// Decodes a JSON body; an empty body reads as `{}`.
    private static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(body.isEmpty ? Array("{}".utf8) : body))
    }

    private static func controlJSON(_ value: some Encodable) throws -> HTTPServerResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return HTTPServerResponse(
            status: 200, headers: [("Content-Type", "application/json")],
            body: Array(try encoder.encode(value)))
    }

    private static func controlError(_ status: Int, _ message: String) -> HTTPServerResponse {
        .json(status, .object(["error": .string(message)]))
    }

    private static func describe(_ error: DecodingError) -> String {
        let (context, what): (DecodingError.Context, String) =
            switch error {
            case .typeMismatch(_, let context): (context, "wrong type")
            case .valueNotFound(_, let context): (context, "missing value")
            case .keyNotFound(let key, let context): (context, "missing key \(key.stringValue)")
            case .dataCorrupted(let context): (context, context.debugDescription)
            @unknown default: (DecodingError.Context(codingPath: [], debugDescription: ""), "undecodable")
            }
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return path.isEmpty ? what : "\(what) at \(path)"
    }
}
