import Foundation
import WireFormats

/// The four Smartcar endpoints, answering as Smartcar does.
extension FakeService {
    func route(_ request: HTTPServerRequest, endpoint: Endpoint?, requestID: String) -> HTTPServerResponse {
        guard let endpoint else {
            return .json(
                404,
                SmartcarErrors.v2(
                    type: "RESOURCE_NOT_FOUND", code: "PATH", status: 404,
                    description: "The requested resource does not exist.",
                    docURL: "https://smartcar.com/docs/errors/api-errors/resource-not-found-errors#path",
                    resolution: nil, requestID: requestID, suggestedUserMessage: nil))
        }
        let method = endpoint == .authorize || endpoint == .user ? "GET" : "POST"
        guard request.method == method else {
            return HTTPServerResponse(
                status: 405, contentType: "text/plain; charset=utf-8",
                body: "Use \(method) for \(endpoint.path).\n", headers: [("Allow", method)])
        }
        switch endpoint {
        case .authorize: return authorize(request)
        case .token: return token(request)
        case .appToken: return appToken(request)
        case .user: return user(request, requestID: requestID)
        }
    }

    // MARK: - POST /oauth/token

    private func token(_ request: HTTPServerRequest) -> HTTPServerResponse {
        guard let credentials = request.basicCredentials,
            credentials.secret == options.secret(ofClient: credentials.id)
        else { return Self.invalidClient(challenge: options.basicChallengeOnInvalidClient) }
        guard request.isFormEncoded else {
            return Self.oauthError(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
        }
        let form = FormCoding.decodeDictionary(String(decoding: request.body, as: UTF8.self))
        switch form["grant_type"] ?? "" {
        case "authorization_code": return exchangeCode(form, clientID: credentials.id)
        case "refresh_token": return refresh(form, clientID: credentials.id)
        case "": return Self.oauthError(400, "invalid_request", "Missing required parameter: grant_type.")
        case let other: return Self.oauthError(400, "unsupported_grant_type", "Unsupported grant_type: \(other).")
        }
    }

    private func exchangeCode(_ form: [String: String], clientID: String) -> HTTPServerResponse {
        guard let code = form["code"], !code.isEmpty else {
            return Self.oauthError(400, "invalid_request", "Missing required parameter: code.")
        }
        let now = options.now()
        let rejected = Self.oauthError(400, "invalid_grant", "Invalid or expired authorization code.")
        return state.withLock { state in
            // Another application's code (live or not): refused as unknown, and left unspent for its own client.
            if let issuedTo = state.codes[code]?.clientID, issuedTo != clientID {
                state.crossClientGrants.append(.init(kind: .code, issuedTo: issuedTo, sentBy: clientID))
                return rejected
            }
            guard let issued = state.codes[code], !issued.used, issued.expiresAt > now else { return rejected }
            if let bound = issued.redirectURI, form["redirect_uri"] != bound {
                return Self.oauthError(
                    400, "invalid_grant", "Unauthorized redirect_uri: \(form["redirect_uri"] ?? "(none)")")
            }
            state.codes[code]?.used = true
            return tokenPairResponse(
                state.mintPair(userID: issued.userID, clientID: issued.clientID, now: now, options: options))
        }
    }

    private func refresh(_ form: [String: String], clientID: String) -> HTTPServerResponse {
        guard let token = form["refresh_token"], !token.isEmpty else {
            return Self.oauthError(400, "invalid_request", "Missing required parameter: refresh_token.")
        }
        let now = options.now()
        let rejected = Self.oauthError(400, "invalid_grant", "Invalid or expired refresh token.")
        return state.withLock { state in
            let issued = state.refreshTokens[token]
            // Another application's refresh token (live or not): refused, and left unspent for its own client.
            if let issued, issued.clientID != clientID {
                state.crossClientGrants.append(.init(kind: .refreshToken, issuedTo: issued.clientID, sentBy: clientID))
            }
            guard issued?.clientID == clientID,
                let grant = state.refreshTokenUsable(token, now: now, reuse: options.refreshReuse)
            else {
                state.refusedRefreshes.append(.init(userID: issued?.userID, at: now))
                return rejected
            }
            if grant.usedAt == nil {
                state.refreshTokens[token]?.usedAt = now
            } else {
                state.graceReuses += 1
            }
            return tokenPairResponse(
                state.mintPair(userID: grant.userID, clientID: grant.clientID, now: now, options: options))
        }
    }

    private func tokenPairResponse(_ pair: (accessToken: String, refreshToken: String)) -> HTTPServerResponse {
        .json(
            200,
            .object([
                "access_token": .string(pair.accessToken),
                "token_type": .string("Bearer"),
                "expires_in": .int(Int64(options.accessTokenLifetime)),
                "refresh_token": .string(pair.refreshToken),
            ]), headers: Self.noStore)
    }

    // MARK: - POST /oauth2/token

    private func appToken(_ request: HTTPServerRequest) -> HTTPServerResponse {
        guard request.isFormEncoded else {
            return Self.oauthError(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
        }
        let form = FormCoding.decodeDictionary(String(decoding: request.body, as: UTF8.self))
        switch form["grant_type"] ?? "" {
        case "client_credentials": break
        case "": return Self.oauthError(400, "invalid_request", "Missing required parameter: grant_type.")
        case let other: return Self.oauthError(400, "unsupported_grant_type", "Unsupported grant_type: \(other).")
        }
        // The documented form is credentials in the body; RFC 6749 §2.3.1 Basic auth is accepted too.
        let credentials =
            form["client_id"].map { (id: $0, secret: form["client_secret"] ?? "") } ?? request.basicCredentials
        guard let credentials, credentials.secret == options.secret(ofClient: credentials.id) else {
            return Self.invalidClient(challenge: false)
        }
        let token = FakeState.randomToken(prefix: "fake-app-")
        let expiresAt = options.now() + TimeInterval(options.appTokenLifetime)
        state.withLock { $0.appTokens[token] = expiresAt }
        return .json(
            200,
            .object([
                "access_token": .string(token),
                "token_type": .string("Bearer"),
                "expires_in": .int(Int64(options.appTokenLifetime)),
            ]), headers: Self.noStore)
    }

    // MARK: - GET /v2.0/user

    private func user(_ request: HTTPServerRequest, requestID: String) -> HTTPServerResponse {
        let now = options.now()
        let userID = request.bearerToken.flatMap { token in
            state.withLock { state in state.accessTokens[token].flatMap { $0.expiresAt > now ? $0.userID : nil } }
        }
        guard let userID else {
            return .json(
                401,
                SmartcarErrors.v2(
                    type: "AUTHENTICATION", code: nil, status: 401, description: "The provided token is invalid.",
                    docURL: "https://smartcar.com/docs/errors/api-errors/authentication-errors#null",
                    resolution: "REAUTHENTICATE", requestID: requestID,
                    suggestedUserMessage: "Please reconnect your vehicle to continue."))
        }
        return .json(200, .object(["id": .string(userID)]))
    }

    // MARK: - GET /oauth/authorize

    /// Auto-approves (or, with `fake_error=NAME` / `fake_deny=1`, refuses) and redirects like Connect.
    /// `fake_user=ID` picks the user the code belongs to.
    private func authorize(_ request: HTTPServerRequest) -> HTTPServerResponse {
        let query = FormCoding.decodeDictionary(request.rawQuery)
        guard query["response_type"] == "code" else {
            return Self.page(400, "Invalid request", "response_type must be code.")
        }
        guard let clientID = query["client_id"], options.secret(ofClient: clientID) != nil else {
            return Self.page(
                400, "Invalid client", "Unknown client_id; this fake accepts only its configured client IDs.")
        }
        let redirectURI = query["redirect_uri"] ?? options.defaultRedirectURI
        var parameters: [(String, String)]
        let refusal = query["fake_error"] ?? (query["fake_deny"] == "1" ? "access_denied" : nil)
        if let refusal {
            parameters = [("error", refusal), ("error_description", Self.connectErrorDescription(refusal))]
            if refusal == "vehicle_incompatible" {
                parameters += [("vin", "5YJSA1E14FF101307"), ("make", "TESLA"), ("model", "Model S"), ("year", "2015")]
            }
        } else {
            parameters = [
                (
                    "code",
                    issueCode(
                        redirectURI: query["redirect_uri"], userID: query["fake_user"] ?? "user-1", clientID: clientID)
                )
            ]
        }
        if let state = query["state"] { parameters.append(("state", state)) }
        let location = Self.appendingQuery(FormCoding.encode(parameters, space: .percent), to: redirectURI)
        let outcome = refusal.map { "refused (\($0))" } ?? "approved automatically"
        return Self.page(
            302, "Redirecting",
            "Fake Smartcar Connect: access \(outcome). Continue to <a href=\"\(Self.escapeHTML(location))\">the application</a>.",
            headers: [("Location", location), ("Cache-Control", "no-store")])
    }

    private static func connectErrorDescription(_ error: String) -> String {
        switch error {
        case "access_denied": "User denied access"
        case "invalid_subscription": "Vehicle does not have an active subscription."
        case "configuration_error": "There is a problem with the application configuration."
        case "no_vehicles": "No vehicles found on this account."
        case "vehicle_incompatible": "The vehicle is not compatible with the requested permissions."
        case "server_error": "Unexpected server error."
        case "user_manually_returned_to_application": "User returned to the application."
        default: "Fake Connect error requested."
        }
    }

    /// `base` with `query` added before any fragment, after an existing query if there is one.
    private static func appendingQuery(_ query: String, to base: String) -> String {
        let fragmentStart = base.firstIndex(of: "#") ?? base.endIndex
        let head = base[..<fragmentStart]
        let separator = head.contains("?") ? (head.hasSuffix("?") || head.hasSuffix("&") ? "" : "&") : "?"
        return head + separator + query + base[fragmentStart...]
    }

    // MARK: - Helpers

    static let noStore: [(name: String, value: String)] = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]

    /// 401 `invalid_client`, with `challenge` also `WWW-Authenticate: Basic realm="Smartcar"`.
    static func invalidClient(challenge: Bool) -> HTTPServerResponse {
        var response = oauthError(401, "invalid_client", "Invalid client credentials.")
        if challenge { response.headers.append(("WWW-Authenticate", "Basic realm=\"Smartcar\"")) }
        return response
    }

    static func oauthError(_ status: Int, _ error: String, _ description: String) -> HTTPServerResponse {
        .json(status, SmartcarErrors.oauth(error, description), headers: noStore)
    }

    private static func page(
        _ status: Int, _ title: String, _ html: String,
        headers: [(name: String, value: String)] = []
    ) -> HTTPServerResponse {
        HTTPServerResponse(
            status: status, contentType: "text/html; charset=utf-8",
            body: "<!doctype html><title>\(title)</title><p>\(html)</p>\n", headers: headers)
    }

    private static func escapeHTML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

extension HTTPServerRequest {
    /// The `client_id:client_secret` pair of an `Authorization: Basic` header.
    var basicCredentials: (id: String, secret: String)? {
        guard let encoded = credentials(scheme: "basic"), let data = Data(base64Encoded: encoded),
            let pair = String(data: data, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        else { return nil }
        return (String(pair[..<colon]), String(pair[pair.index(after: colon)...]))
    }

    var bearerToken: String? { credentials(scheme: "bearer") }

    private func credentials(scheme: String) -> String? {
        guard let value = header("authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == scheme else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }
}
