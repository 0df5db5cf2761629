import Foundation

/// A fake of Smartcar's OAuth endpoints on a loopback port, so clients can be tested without the network.
///
/// Point every Smartcar origin (connect, auth, iam, api) at `origin`; the endpoints answer with the real
/// wire formats, every answer carries `SC-Request-Id`:
/// - `GET /oauth/authorize`: checks `response_type=code` and `client_id`, approves at once and redirects
///   (302) to `redirect_uri` (or `Options.defaultRedirectURI`) with `code` and the `state` echoed.
///   Knobs in the query: `fake_error=NAME` (or `fake_deny=1` for `access_denied`) redirects with
///   `error`, `error_description` (and `vin`/`make`/`model`/`year` for `vehicle_incompatible`);
///   `fake_user=ID` picks the user the code belongs to (default `user-1`).
/// - `POST /oauth/token`: Basic client auth (the main client or one of `Options.extraClients`), form body; `authorization_code` (single use, expiring, bound to
///   the redirect_uri it was issued for) and `refresh_token` (rotating; reuse per `Options.refreshReuse`);
///   either grant only for the client it was issued to (else `invalid_grant`, recorded in `crossClientGrants`).
/// - `POST /oauth2/token`: client credentials in the form body (or Basic) → 3600 s token, no refresh token.
/// - `GET /v2.0/user`: `Bearer` access token it issued and not expired → `{"id": userID}`, else a v2 401.
///
/// `inject` queues failures (`Fault`); `/_fake/...` control paths (`ControlAPI.swift`) do the same for
/// tests in other processes. Call `stop()` when done (it also stops when the last reference goes away).
package final class FakeSmartcar: Sendable {
    /// How the fake treats a refresh token that has already been exchanged.
    package enum RefreshReuse: Sendable, Equatable {
        /// Dead at once: any reuse answers 400 `invalid_grant` (design for this).
        case rejected
        /// Reuse within this many seconds of the first use mints another pair (Smartcar documents a
        /// one-minute grace); later reuse answers `invalid_grant`.
        case grace(TimeInterval)
    }

    package struct Options: Sendable {
        /// The credentials the token endpoints accept (the main application).
        package var clientID = "sandbox-client-id"
        package var clientSecret = "sandbox-client-secret"
        /// More applications (client id: secret) the endpoints accept besides the main one. Each grant belongs to
        /// the client it was issued to; another client using it gets `invalid_grant` (see `crossClientGrants`).
        package var extraClients: [String: String] = [:]
        /// The `expires_in` (seconds) of user access tokens; `/v2.0/user` refuses them afterwards.
        package var accessTokenLifetime = 7200
        /// Seconds a refresh token stays usable (Smartcar: 60 days).
        package var refreshTokenLifetime: TimeInterval = 60 * 24 * 3600
        /// Seconds an authorization code stays exchangeable.
        package var codeLifetime: TimeInterval = 600
        /// The `expires_in` of application tokens (Smartcar: one hour).
        package var appTokenLifetime = 3600
        package var refreshReuse: RefreshReuse = .rejected
        /// When true, every 401 `invalid_client` from `/oauth/token` carries `WWW-Authenticate: Basic
        /// realm="Smartcar"` (as RFC 6749 §5.2 asks for Basic-auth clients), not only the injected
        /// `Fault.invalidClientBasicRealm` (an answer URLSession on Linux hangs on; libcurl reads it, body included).
        package var basicChallengeOnInvalidClient = false
        /// Added before every answer (not to control paths), e.g. for refresh-storm benchmarks.
        package var latency: Duration = .zero
        /// 0: any free port.
        package var port: UInt16 = 0
        /// Where `/oauth/authorize` redirects when the query has no `redirect_uri` (the app's default).
        package var defaultRedirectURI = "http://localhost:8000/callback"
        /// The fake's notion of now for every expiry and grace window; inject a clock to test them without sleeping.
        package var now: @Sendable () -> Date = { Date() }
        /// Receives one line per Smartcar request (method, path, endpoint, outcome); never a secret.
        /// Called on the server's connection threads before the answer is sent; keep it quick.
        package var log: (@Sendable (String) -> Void)?

        package init() {}

        /// The secret of `clientID` if the fake knows that application.
        package func secret(ofClient clientID: String) -> String? {
            clientID == self.clientID ? clientSecret : extraClients[clientID]
        }
    }

    /// A refresh the fake answered `invalid_grant`: whose token it was (nil: a token it never issued), and when.
    package struct RefusedRefresh: Sendable, Equatable {
        package var userID: String?
        package var at: Date
    }

    /// A code exchange or refresh by a client other than the one the grant was issued to, which the fake
    /// answered `invalid_grant`: a client sent another application's grant upstream.
    package struct CrossClientGrant: Sendable, Equatable {
        package enum Kind: Sendable, Equatable {
            case code, refreshToken
        }

        package var kind: Kind
        /// The application the grant was issued to.
        package var issuedTo: String
        /// The application that sent it.
        package var sentBy: String
    }

    package let options: Options
    /// The port it listens on (127.0.0.1).
    package let port: UInt16
    private let service: FakeService
    private let server: HTTPServer

    /// Binds 127.0.0.1 (`options.port`, or any free port) and starts serving on threads of its own.
    package init(options: Options = .init()) throws(FakeServerError) {
        let service = FakeService(options: options)
        self.options = options
        self.service = service
        server = try HTTPServer(
            port: options.port, handler: { request in service.handle(request) },
            finished: { request in service.finished(request) })
        port = server.port
    }

    deinit {
        service.held.abandonAll()
        server.stop()
    }

    /// `http://127.0.0.1:PORT`: use it for every `*_ORIGIN`.
    package var origin: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Listens on 127.0.0.1:`port` too, in the network namespace of the calling thread: a test thread that joined
    /// another namespace (a simulated host) makes the fake reachable there at the same `origin`.
    package func listenInCurrentNamespace() throws(FakeServerError) { try server.listenInCurrentNamespace() }

    /// Closes every listener and connection; stalled and delayed requests end unanswered.
    /// Returns when the server's threads are done. Idempotent.
    package func stop() {
        service.held.abandonAll()
        server.stop()
    }

    /// Mints a token pair for `userID` as if the user had gone through Connect and the code was exchanged,
    /// issued to the application `clientID` (nil: the main one, `options.clientID`).
    package func mintTokens(
        userID: String = "user-1", clientID: String? = nil
    ) -> (accessToken: String, refreshToken: String) {
        service.mintTokens(userID: userID, clientID: clientID ?? options.clientID)
    }

    /// Accepts a grant it did not issue, as if it had: `accessToken` until `accessExpiresAt`, `refreshToken` for
    /// a refresh token's lifetime, both for `userID` and the main application. `--sandbox` adopts the grants of a
    /// durable store, so they outlive the process whose fake issued them.
    package func adoptGrant(userID: String, accessToken: String, accessExpiresAt: Date, refreshToken: String) {
        service.adoptGrant(
            userID: userID, accessToken: accessToken, accessExpiresAt: accessExpiresAt, refreshToken: refreshToken)
    }

    /// Issues an authorization code (what Connect would put in the redirect) to the application `clientID`
    /// (nil: the main one). With a `redirectURI` the exchange must name the same one; without, any (or none)
    /// is accepted.
    package func issueCode(redirectURI: String? = nil, userID: String = "user-1", clientID: String? = nil) -> String {
        service.issueCode(redirectURI: redirectURI, userID: userID, clientID: clientID ?? options.clientID)
    }

    /// Whether `refreshToken` would be accepted now (issued, not expired, unused or within the grace).
    package func isLive(refreshToken: String) -> Bool { service.isLive(refreshToken: refreshToken) }

    /// The user an access or refresh token was issued to (nil: never issued), so a test can tell whose token
    /// a key was answered with.
    package func owner(ofToken token: String) -> String? {
        service.state.withLock { $0.accessTokens[token]?.userID ?? $0.refreshTokens[token]?.userID }
    }

    /// Kills every access and refresh token of `userID`, as when the owner disconnects the app:
    /// refreshes then answer `invalid_grant`, `/v2.0/user` a 401. Returns how many tokens died.
    @discardableResult
    package func revokeTokens(userID: String) -> Int { service.revokeTokens(userID: userID) }

    /// Queues `fault` for the next `times` requests to `endpoint` (nil: any Smartcar endpoint).
    /// Each request takes one use of the oldest queued fault that matches it.
    package func inject(_ fault: Fault, on endpoint: Endpoint? = nil, times: Int = 1) {
        service.inject(fault, on: endpoint, times: times)
    }

    /// Whether `refreshToken` has been exchanged already (it may still be usable inside the grace window):
    /// a store holding it lost the token that replaced it, unless that refresh's answer never arrived.
    package func isSpent(refreshToken: String) -> Bool {
        service.state.withLock { $0.refreshTokens[refreshToken]?.usedAt != nil }
    }

    /// The user a token the fake issued belongs to (nil: never issued, or revoked): which grant a token is of.
    package func owner(ofAccessToken token: String) -> String? {
        service.state.withLock { $0.accessTokens[token]?.userID }
    }

    package func owner(ofRefreshToken token: String) -> String? {
        service.state.withLock { $0.refreshTokens[token]?.userID }
    }

    /// Every refresh answered `invalid_grant` (a refresh token spent twice, expired or unknown), in order.
    package var refusedRefreshes: [RefusedRefresh] { service.state.withLock { $0.refusedRefreshes } }

    /// Every code exchange or refresh that sent a grant of another application, in order (each answered
    /// `invalid_grant`; a refresh is in `refusedRefreshes` too).
    package var crossClientGrants: [CrossClientGrant] { service.state.withLock { $0.crossClientGrants } }

    /// Refreshes that re-sent a spent refresh token inside the grace window (`RefreshReuse.grace`).
    package var graceReuses: Int { service.state.withLock { $0.graceReuses } }

    /// Request ids of the answers `Fault.hold` keeps back now, in the order they were held.
    package var heldAnswers: [String] { service.held.requestIDs }

    /// Waits until at least `count` answers are held; false if `timeout` passes first.
    package func waitForHeldAnswers(_ count: Int, timeout: Duration) -> Bool {
        service.held.wait(forCount: count, timeout: timeout)
    }

    /// Sends every held answer, one at a time in a random order drawn from `generator`, each sent before the
    /// next is released; answers their request ids in the order they went.
    @discardableResult
    package func releaseHeld(using generator: inout some RandomNumberGenerator) -> [String] {
        service.releaseHeld(using: &generator)
    }

    /// Every request to a non-control path, in arrival order.
    package var requests: [RecordedRequest] { service.state.withLock { $0.log } }

    /// How many requests reached `endpoint` (faulted ones included).
    package func count(_ endpoint: Endpoint) -> Int { service.state.withLock { $0.counts[endpoint] ?? 0 } }

    /// The most Smartcar requests (any path but control paths) the fake held at once: received and not yet
    /// answered, its `latency` included (a request stops counting just before its answer is sent). For
    /// benchmarks that check a client bounds its concurrency.
    package var peakConcurrentRequests: Int { service.state.withLock { $0.peakInFlight } }

    /// Forgets recorded requests, counts, queued faults and the concurrency peak; issued codes and tokens stay valid.
    package func reset() { service.reset() }
}
