import AgentSupport
import Foundation
import WireFormats

/// Speaks to Smartcar's OAuth endpoints: code exchange, refresh, application token, and who the user is.
///
/// Stateless apart from its configuration: no caching and no single-flight here (the agent does both).
/// Each call has one overall budget (`configuration.requestTimeout`) covering retries and back-off.
/// A code exchange or a refresh is retried only when the request certainly never reached Smartcar (no
/// connection) or Smartcar refused it with 429: codes are single-use and refresh tokens rotate, so a blind
/// resend could spend them twice.
package final class SmartcarClient: Sendable {
    package let configuration: SmartcarConfiguration
    let transport: any HTTPTransport
    let clock: any WallClock
    let logger: Logger
    let retry: RetryPolicy
    let userAgent: String

    package init(
        configuration: SmartcarConfiguration, transport: any HTTPTransport = CurlTransport.shared,
        clock: any WallClock = SystemClock(), logger: Logger = .silent, retry: RetryPolicy = .default,
        agentVersion: String = AgentVersion.current
    ) {
        self.configuration = configuration
        self.transport = transport
        self.clock = clock
        self.logger = logger
        self.retry = retry
        self.userAgent = UserAgent.value(agentVersion: agentVersion)
    }

    /// Exchanges an authorization code from a Connect redirect for a token pair.
    /// `redirectURI` must be the one the Connect URL carried; nil means the configured one (as `ConnectURL`
    /// does), and with neither the parameter is left out. `flags` go in the query (`?flags=a%3Ab`).
    package func exchangeCode(
        _ code: String, redirectURI: String?, flags: FeatureFlags? = nil
    ) async throws(SmartcarError) -> TokenGrant {
        guard !code.isEmpty else { throw .invalidArgument("the authorization code is empty") }
        let credentials = try configuration.requireCredentials()
        var form = [("grant_type", "authorization_code"), ("code", code)]
        if let redirectURI = redirectURI.flatMap({ $0.isEmpty ? nil : $0 })
            ?? configuration.redirectURI.flatMap({ $0.isEmpty ? nil : $0 })
        {
            form.append(("redirect_uri", redirectURI))
        }
        return try await userTokenRequest(.exchange, form: form, flags: flags, credentials: credentials, secret: code)
    }

    /// Trades a refresh token for a new pair. The old refresh token is spent once Smartcar has processed
    /// this (persist the new one before anything else); a rejected one means the user must connect again.
    /// An answer without a refresh token keeps `refreshToken` (RFC 6749 section 6). A 200 answer that is
    /// unusable but carries a refresh token throws `upstreamError` with `rotatedRefreshToken` set: store it
    /// in place of `refreshToken`, which Smartcar has already rotated.
    package func refresh(_ refreshToken: String, flags: FeatureFlags? = nil) async throws(SmartcarError) -> TokenGrant {
        guard !refreshToken.isEmpty else { throw .invalidArgument("the refresh token is empty") }
        let credentials = try configuration.requireCredentials()
        let form = [("grant_type", "refresh_token"), ("refresh_token", refreshToken)]
        return try await userTokenRequest(
            .refresh, form: form, flags: flags, credentials: credentials, secret: refreshToken,
            keptRefreshToken: refreshToken)
    }

    /// A new application token (client credentials grant, credentials in the form body as Smartcar's
    /// examples send them). Not cached here.
    package func applicationToken() async throws(SmartcarError) -> ApplicationToken {
        let credentials = try configuration.requireCredentials()
        try SmartcarConfiguration.requireSafeOrigin(configuration.iamOrigin, variable: "SMARTCAR_IAM_ORIGIN")
        let body = FormCoding.encode([
            ("grant_type", "client_credentials"), ("client_id", credentials.id),
            ("client_secret", credentials.secret),
        ])
        let request = HTTPRequest(
            method: "POST", url: endpoint(configuration.iamOrigin, "/oauth2/token"),
            headers: formHeaders(), body: Data(body.utf8))
        let redactor = Redactor([credentials.secret])
        let response = try await send(request, .applicationToken, redactor: redactor)
        let now = clock.now()
        switch TokenResponseBody.parse(response.body, defaultExpiresIn: 3600) {
        case .success(let token):
            return ApplicationToken(
                accessToken: token.accessToken, tokenType: token.tokenType, expiresAt: now + token.expiresIn)
        case .failure(let malformed):
            throw malformedAnswer(response, .applicationToken, reason: malformed.reason)
        }
    }

    /// The Smartcar user id the access token belongs to (`GET /v2.0/user`), a stable key for the user's tokens.
    package func userID(accessToken: String) async throws(SmartcarError) -> String {
        guard !accessToken.isEmpty else { throw .invalidArgument("the access token is empty") }
        try SmartcarConfiguration.requireSafeOrigin(configuration.apiOrigin, variable: "SMARTCAR_API_ORIGIN")
        let request = HTTPRequest(
            method: "GET", url: endpoint(configuration.apiOrigin, "/v2.0/user"),
            headers: [
                "Authorization": "Bearer \(accessToken)", "Accept": "application/json",
                "User-Agent": userAgent,
            ])
        let response = try await send(request, .user, redactor: Redactor([accessToken, configuration.clientSecret]))
        guard case .object(let members)? = try? JSONDecoder().decode(JSONValue.self, from: response.body),
            let id = members["id"]?.stringValue, !id.isEmpty
        else { throw malformedAnswer(response, .user, reason: "no user id") }
        return id
    }

    // MARK: - Requests

    private func userTokenRequest(
        _ operation: SmartcarCall, form: [(String, String)], flags: FeatureFlags?,
        credentials: (id: String, secret: String), secret: String, keptRefreshToken: String? = nil
    ) async throws(SmartcarError) -> TokenGrant {
        try SmartcarConfiguration.requireSafeOrigin(configuration.authOrigin, variable: "SMARTCAR_AUTH_ORIGIN")
        var url = endpoint(configuration.authOrigin, "/oauth/token")
        if let flags, !flags.isEmpty {
            url = URL(string: url.absoluteString + "?" + FormCoding.encode([("flags", flags.parameterValue)]))!
        }
        let basic = Data("\(credentials.id):\(credentials.secret)".utf8).base64EncodedString()
        var headers = formHeaders()
        headers["Authorization"] = "Basic \(basic)"
        let request = HTTPRequest(method: "POST", url: url, headers: headers, body: Data(FormCoding.encode(form).utf8))
        let redactor = Redactor([credentials.secret, basic, secret])
        let response = try await send(request, operation, redactor: redactor)
        let now = clock.now()
        switch TokenResponseBody.parse(response.body, defaultExpiresIn: 7200) {
        case .success(let token):
            guard let refreshToken = token.refreshToken ?? keptRefreshToken else {
                throw malformedAnswer(response, operation, reason: "no refresh_token")
            }
            return TokenGrant(
                accessToken: token.accessToken, tokenType: token.tokenType, refreshToken: refreshToken,
                expiresAt: now + token.expiresIn, refreshExpiresAt: now + TokenGrant.refreshTokenLifetime)
        case .failure(let malformed):
            throw malformedAnswer(
                response, operation, reason: malformed.reason, rotatedRefreshToken: malformed.refreshToken)
        }
    }

    private func formHeaders() -> [String: String] {
        ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json", "User-Agent": userAgent]
    }

    private func endpoint(_ origin: URL, _ path: String) -> URL {
        URL(string: origin.absoluteString + path)!
    }
}
