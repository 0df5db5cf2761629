import Foundation
import JSONRPC
import SmartcarOAuth
import TokenStore
import WireFormats

// Tokens: handing them out (from memory on the reading thread when fresh), the application token, importing,
// forgetting and listing keys.

enum GetToken: AgentMethod {
    static let name = "getToken"
    static let errors: Set<ErrorKind> = ErrorKind.upstream.union([.unknownKey, .reauthRequired, .storageError])

    struct Params: MethodParams {
        var key: String
        /// Seconds the token must stay valid; 300 when absent.
        var minValidity: Double?
        var forceRefresh: Bool?
        /// The access token an API call just refused (401): the key is refreshed once if it still holds it,
        /// otherwise its current token is answered. It decides instead of `forceRefresh`.
        var rejectedToken: String?

        init?(flat: FlatParams) {
            guard case .string(let key)? = flat["key"] else { return nil }
            self.key = key
            switch flat["minValidity"] {
            case nil, .null?: minValidity = nil
            case .number(let seconds)?: minValidity = seconds
            default: return nil
            }
            switch flat["forceRefresh"] {
            case nil, .null?: forceRefresh = nil
            case .bool(let force)?: forceRefresh = force
            default: return nil
            }
            switch flat["rejectedToken"] {
            case nil, .null?: rejectedToken = nil
            case .string(let token)?: rejectedToken = token
            default: return nil
            }
        }

        func validate() throws(AgentError) {
            try validateKey(key)
            guard (0...3600).contains(minValidity ?? 300) else {
                throw .invalidParams("invalid params: 'minValidity' must be between 0 and 3600 seconds")
            }
            guard rejectedToken?.isEmpty != true else {
                throw .invalidParams("invalid params: 'rejectedToken' must not be empty")
            }
            try Limits.check(rejectedToken, field: "rejectedToken", max: Limits.token)
        }
    }

    static func run(_ params: Params, agent: Agent, context: PeerContext) async throws -> TokenSummary {
        let token = try await agent.tokens.token(
            for: params.key, minValidity: params.minValidity ?? 300, forceRefresh: params.forceRefresh ?? false,
            rejected: params.rejectedToken)
        return TokenSummary(token, now: agent.setup.clock.now())
    }

    /// The hot path: a token in memory valid long enough is answered on the reading thread. The one caller
    /// that finds it inside its early window also starts the key's refresh ahead of expiry.
    static func immediateReply(to request: IncomingMessage, agent: Agent) -> ImmediateReply? {
        guard let flat = request.flatParams, let params = Params(flat: flat), (try? params.validate()) != nil,
            params.forceRefresh != true, params.rejectedToken == nil
        else { return nil }
        let minValidity = params.minValidity ?? 300
        guard
            let summary = agent.tokens.snapshot.summary(
                for: params.key, minValidity: minValidity, now: agent.setup.clock.now())
        else { return nil }
        if summary.refreshAhead {
            Task { [tokens = agent.tokens] in await tokens.refreshAhead(params.key, minValidity: minValidity) }
        }
        return .result(json: summary.json)
    }
}

enum AppToken: AgentMethod {
    static let name = "appToken"
    static let errors: Set<ErrorKind> = ErrorKind.upstream

    struct Params: MethodParams {
        var forceRefresh: Bool?
    }

    static func run(_ params: Params, agent: Agent, context: PeerContext) async throws -> JSONValue {
        let token = try await agent.appTokens.token(forceRefresh: params.forceRefresh ?? false)
        let now = agent.setup.clock.now()
        return [
            "accessToken": .string(token.accessToken),
            "tokenType": .string(token.tokenType),
            "expiresAt": .string(RFC3339.string(token.expiresAt)),
            "expiresIn": .int(ExpiresIn.seconds(until: token.expiresAt, now: now)),
        ]
    }
}

/// Imports tokens obtained elsewhere under a key.
enum StoreToken: AgentMethod {
    static let name = "storeToken"
    static let errors: Set<ErrorKind> = [.storageError]

    struct Params: MethodParams {
        var key: String
        var accessToken: String
        var refreshToken: String
        var expiresAt: String
        var refreshExpiresAt: String?
        var scope: String?

        func validate() throws(AgentError) {
            try validateKey(key)
            guard !accessToken.isEmpty else { throw .invalidParams("invalid params: 'accessToken' must not be empty") }
            guard !refreshToken.isEmpty else {
                throw .invalidParams("invalid params: 'refreshToken' must not be empty")
            }
            try Limits.check(accessToken, field: "accessToken", max: Limits.token)
            try Limits.check(refreshToken, field: "refreshToken", max: Limits.token)
            for (field, token) in [("accessToken", accessToken), ("refreshToken", refreshToken)]
            where token.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                // No real token has one, a bearer header cannot carry it, and not every store can hold a NUL.
                throw .invalidParams("invalid params: '\(field)' must not contain control characters")
            }
            try Limits.check(expiresAt, field: "expiresAt", max: Limits.time)
            try Limits.check(refreshExpiresAt, field: "refreshExpiresAt", max: Limits.time)
            try Limits.check(scope, field: "scope", max: Limits.scope)
            _ = try times()
        }

        /// The two times, parsed: the one check of their format.
        func times() throws(AgentError) -> (expiresAt: Date, refreshExpiresAt: Date?) {
            guard let expires = RFC3339.date(expiresAt) else {
                throw .invalidParams(
                    "invalid params: 'expiresAt' must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
            }
            guard let refreshExpiresAt else { return (expires, nil) }
            guard let refreshExpires = RFC3339.date(refreshExpiresAt) else {
                throw .invalidParams(
                    "invalid params: 'refreshExpiresAt' must be an RFC 3339 time such as 2026-03-31T12:00:00Z")
            }
            return (expires, refreshExpires)
        }
    }

    static func run(_ params: Params, agent: Agent, context: PeerContext) async throws -> TokenSummary {
        let times = try params.times()
        let token = StoredToken(
            key: params.key, accessToken: params.accessToken, refreshToken: params.refreshToken,
            expiresAt: times.expiresAt, refreshExpiresAt: times.refreshExpiresAt,
            scope: params.scope, generation: 0, lastRefreshedAt: nil, needsReauth: false)
        let saved = try await agent.tokens.save(token, kind: .stored)
        return TokenSummary(saved, now: agent.setup.clock.now())
    }
}

enum ForgetToken: AgentMethod {
    static let name = "forgetToken"
    static let errors: Set<ErrorKind> = [.storageError]

    struct Params: MethodParams {
        var key: String
        func validate() throws(AgentError) { try validateKey(key) }
    }

    static func run(_ params: Params, agent: Agent, context: PeerContext) async throws -> JSONValue {
        let existed = try await agent.tokens.forget(params.key)
        return ["key": .string(params.key), "existed": .bool(existed)]
    }
}

enum ListTokens: AgentMethod {
    static let name = "listTokens"
    static let errors: Set<ErrorKind> = [.storageError]

    static func run(_ params: NoParams, agent: Agent, context: PeerContext) async throws -> JSONValue {
        let rows = try await agent.tokens.list()
        let now = agent.setup.clock.now()
        return [
            "tokens": .array(
                rows.map { row in
                    [
                        "key": .string(row.key),
                        "expiresAt": .string(RFC3339.string(row.expiresAt)),
                        "refreshExpiresAt": row.refreshExpiresAt.map { .string(RFC3339.string($0)) } ?? .null,
                        "state": .string(
                            row.needsReauth ? "reauthRequired" : row.expiresAt > now ? "valid" : "expired"),
                        "generation": .int(row.generation),
                        "lastRefreshedAt": row.lastRefreshedAt.map { .string(RFC3339.string($0)) } ?? .null,
                    ]
                })
        ]
    }
}

/// Checks a key: non-empty, at most 512 characters and 2048 UTF-8 bytes (one character may hold any number
/// of combining marks), no control characters. Printable ASCII, the common case, is settled from its bytes
/// alone: this runs on the hot path.
func validateKey(_ key: String, field: String = "key") throws(AgentError) {
    let utf8 = key.utf8
    if (1...512).contains(utf8.count), utf8.allSatisfy({ (0x20..<0x7F).contains($0) }) { return }
    guard !key.isEmpty else { throw .invalidParams("invalid params: '\(field)' must not be empty") }
    try Limits.check(key, field: field, max: Limits.keyBytes)
    guard key.count <= 512 else { throw .invalidParams("invalid params: '\(field)' is longer than 512 characters") }
    guard !key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
        throw .invalidParams("invalid params: '\(field)' must not contain control characters")
    }
}
