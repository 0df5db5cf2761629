import AgentSupport
import Foundation
import JSONRPC
import SmartcarOAuth
import Synchronization
import TokenStore

/// The agent's JSON-RPC methods: lifecycle, Connect, code exchange, tokens. One instance per process.
public final class Agent: MessageHandler {
    /// Everything the agent is built from; the executable fills it from the command line and the environment.
    public struct Setup: Sendable {
        public var configuration: SmartcarConfiguration
        public var store: TokenStore
        /// Where the store lives, for `status` (a path or `memory`).
        public var storeDescription: String
        public var transport: any HTTPTransport
        public var clock: any WallClock
        /// Present only with `--allow-clock-control`: `$/advanceClock` moves it.
        public var adjustableClock: AdjustableClock?
        public var logger: Logger
        package var settings: AgentSettings

        package init(configuration: SmartcarConfiguration, store: TokenStore, storeDescription: String,
                     transport: any HTTPTransport, clock: any WallClock, adjustableClock: AdjustableClock?,
                     logger: Logger, settings: AgentSettings) {
            self.configuration = configuration
            self.store = store
            self.storeDescription = storeDescription
            self.transport = transport
            self.clock = clock
            self.adjustableClock = adjustableClock
            self.logger = logger
            self.settings = settings
        }
    }

    private struct Lifecycle {
        var initialized = false
        var shutdownRequested = false
        var exitCode: Int32?
    }

    private let setup: Setup
    private let smartcar: SmartcarClient
    private let tokens: TokenManager
    private let appTokens: AppTokenCache
    private let states: ConnectStates
    private let upstream: UpstreamLimiter
    private let lifecycle = Mutex(Lifecycle())
    private let notifier: Notifier
    private let startedAt = Date()

    public init(_ setup: Setup) {
        self.setup = setup
        let smartcar = SmartcarClient(configuration: setup.configuration, transport: setup.transport, clock: setup.clock, logger: setup.logger)
        self.smartcar = smartcar
        let upstream = UpstreamLimiter(limit: setup.settings.maxUpstreamConcurrency)
        self.upstream = upstream
        appTokens = AppTokenCache(smartcar: smartcar, clock: setup.clock)
        states = ConnectStates(clock: setup.clock, lifetime: setup.settings.stateTTLSeconds)
        let notifier = Notifier()
        self.notifier = notifier
        var refreshConfiguration = setup.configuration
        // A refresh must end well inside its lease, or another process could spend the same refresh token.
        refreshConfiguration.requestTimeout = min(setup.configuration.requestTimeout,
                                                  .milliseconds(Int64(setup.settings.leaseSeconds * 750)))
        let refreshClient = SmartcarClient(configuration: refreshConfiguration, transport: setup.transport, clock: setup.clock, logger: setup.logger)
        tokens = TokenManager(
            store: setup.store, smartcar: refreshClient, upstream: upstream, clock: setup.clock, logger: setup.logger,
            settings: .init(leaseDuration: setup.settings.leaseSeconds), onEvent: notifier.send)
    }

    /// The process exit code the lifecycle decided (`exit` after `shutdown` → 0, without → 1); nil if none did.
    public var exitCode: Int32? { lifecycle.withLock { $0.exitCode } }

    // MARK: MessageHandler

    public func handleRequest(_ request: IncomingMessage, connection: Connection) async throws -> any Encodable & Sendable {
        let shuttingDown = lifecycle.withLock { $0.shutdownRequested }
        if shuttingDown { throw Self.shuttingDown }
        do {
            return try await dispatch(request, connection: connection)
        } catch let error as ResponseError {
            throw error
        } catch {
            throw responseError(for: error)
        }
    }

    /// The hot path, on the connection's reading thread: a `getToken` whose token is cached and fresh enough,
    /// `ping`, `shutdown`, and the refusal of everything after `shutdown`. The rest goes to `handleRequest`.
    public func immediateReply(to request: IncomingMessage) -> ImmediateReply? {
        let shuttingDown = lifecycle.withLock { state in
            let already = state.shutdownRequested
            if request.method == "shutdown" { state.shutdownRequested = true }
            return already
        }
        if shuttingDown { return .error(Self.shuttingDown) }
        switch request.method {
        case "getToken": return cachedToken(request).map { .result(json: $0) }
        case "ping": return .result(json: Array("{}".utf8))
        case "shutdown": return .result(json: Array("null".utf8))
        default: return nil
        }
    }

    private static let shuttingDown = ResponseError.invalidRequest("the agent is shutting down; only the 'exit' notification is accepted")

    /// A cached token's summary for params the slow path would read the same way (a plain key, a
    /// `minValidity` in range, no `forceRefresh`); nil leaves the request to `getToken`.
    private func cachedToken(_ request: IncomingMessage) -> [UInt8]? {
        guard let params = request.flatParams, case .string(let key)? = params["key"],
              (1...512).contains(key.utf8.count), key.utf8.allSatisfy({ (0x20..<0x7F).contains($0) })
        else { return nil }
        var minValidity: TimeInterval = 300
        switch params["minValidity"] {
        case nil: break
        case .number(let seconds)? where (0...3600).contains(seconds): minValidity = seconds
        default: return nil
        }
        switch params["forceRefresh"] {
        case nil, .bool(false)?: break
        default: return nil
        }
        return tokens.cachedSummary(for: key, minValidity: minValidity)
    }

    public func handleNotification(_ notification: IncomingMessage, connection: Connection) async {
        switch notification.method {
        case "exit":
            let code: Int32 = lifecycle.withLock { state in
                let code: Int32 = state.shutdownRequested ? 0 : 1
                state.exitCode = code
                return code
            }
            setup.logger.info("exit notification received; exiting with code \(code)")
            connection.cancelAll()
        case "initialized":
            break
        default:
            setup.logger.debug("ignoring notification '\(notification.method)'")
        }
    }

    private func dispatch(_ request: IncomingMessage, connection: Connection) async throws -> any Encodable & Sendable {
        switch request.method {
        case "initialize": return try initialize(request.params(InitializeParams.self), connection: connection)
        case "shutdown":
            lifecycle.withLock { $0.shutdownRequested = true }
            return JSONValue.null
        case "ping": return JSONValue.object([:])
        case "status": return try await status(connection: connection)
        case "buildConnectURL": return try buildConnectURL(request)
        case "handleRedirect": return try await handleRedirect(request.params(HandleRedirectParams.self))
        case "exchangeCode": return try await exchangeCode(request.params(ExchangeCodeParams.self))
        case "getToken": return try await getToken(request.params(GetTokenParams.self))
        case "appToken": return try await appToken(request.params(AppTokenParams.self))
        case "storeToken": return try await storeToken(request.params(StoreTokenParams.self))
        case "forgetToken": return try await forgetToken(request.params(KeyParams.self))
        case "listTokens": return try await listTokens()
        case "$/advanceClock" where setup.adjustableClock != nil:
            return try advanceClock(request.params(AdvanceClockParams.self))
        default: throw ResponseError.methodNotFound(request.method)
        }
    }

    // MARK: Lifecycle

    private func initialize(_ params: InitializeParams, connection: Connection) throws -> JSONValue {
        try lifecycle.withLock { state throws(ResponseError) in
            guard !state.initialized else { throw .invalidRequest("initialize was already called") }
            state.initialized = true
        }
        if params.notifications == true { notifier.enable(on: connection) }
        if let client = params.clientInfo {
            setup.logger.info("client: \(client.name) \(client.version ?? "")")
        }
        if let pid = params.processId {
            ParentWatch.exitWhenGone(pid: pid, logger: setup.logger) { connection.close() }
        }
        return [
            "serverInfo": ["name": "smartcar-auth-agent", "version": .string(AgentVersion.current)],
            "protocolVersion": .string(AgentVersion.protocolVersion),
            "capabilities": [
                "methods": .array(Self.methods.map { .string($0) }),
                "notifications": params.notifications == true ? ["tokenChanged", "reauthRequired"] : [],
            ],
            "configuration": configurationSummary(),
        ]
    }

    static let methods = [
        "initialize", "shutdown", "ping", "status", "buildConnectURL", "handleRedirect", "exchangeCode", "getToken", "appToken",
        "storeToken", "forgetToken", "listTokens",
    ]

    private func configurationSummary() -> JSONValue {
        let configuration = setup.configuration
        return [
            "clientID": configuration.clientID.map { .string($0) } ?? .null,
            "clientSecretSet": .bool(configuration.clientSecret != nil),
            "redirectURI": configuration.redirectURI.map { .string($0) } ?? .null,
            "mode": .string(configuration.mode.rawValue),
            "store": .string(setup.storeDescription),
        ]
    }

    private func status(connection: Connection) async throws -> JSONValue {
        let keys = try? await setup.store.count()
        return [
            "version": .string(AgentVersion.current),
            "uptimeSeconds": .double((Date().timeIntervalSince(startedAt) * 1000).rounded() / 1000),
            "requestsServed": .int(Int64(connection.requestsServed)),
            "inFlight": .int(Int64(connection.inFlightCount)),
            "storedKeys": keys.map { .int(Int64($0)) } ?? .null,
            "peakUpstreamConcurrency": .int(Int64(await upstream.peak)),
            "configuration": configurationSummary(),
        ]
    }

    private func advanceClock(_ params: AdvanceClockParams) throws(ResponseError) -> JSONValue {
        guard let clock = setup.adjustableClock else { throw .methodNotFound("$/advanceClock") }
        clock.advance(by: params.seconds)
        return ["now": .string(RFC3339.string(clock.now()))]
    }

    // MARK: Connect and code exchange

    private func buildConnectURL(_ request: IncomingMessage) throws -> JSONValue {
        let options = try request.params(ConnectOptions.self)
        let key = try request.params(ConnectKeyParams.self).key.map { key throws(ResponseError) in try validatedKey(key) }
        let (url, state) = try connectURL(options, key: key)
        return ["url": .string(url), "state": .string(state)]
    }

    /// Builds a Connect URL and remembers its state (with the redirect URI and key) for `handleRedirect`.
    private func connectURL(_ options: ConnectOptions, key: String?) throws(SmartcarError) -> (url: String, state: String) {
        var options = options
        let state = options.state ?? ConnectStates.generate()
        options.state = state
        let url = try ConnectURL.build(options, state: state, configuration: setup.configuration)
        states.remember(state, redirectURI: options.redirectURI ?? setup.configuration.redirectURI, key: key)
        return (url.absoluteString, state)
    }

    private func handleRedirect(_ params: HandleRedirectParams) async throws -> TokenSummary {
        let key = try params.key.map { key throws(ResponseError) in try validatedKey(key) }
        let redirect = try ConnectRedirect.parse(params.url)
        guard let state = redirect.state else {
            throw SmartcarError(.stateMismatch, "the redirect URL carries no state; it was not started by this agent")
        }
        let issued: ConnectStates.Issued
        switch states.claim(state) {
        case .valid(let found): issued = found
        case .unknown: throw SmartcarError(.stateMismatch, "the redirect's state was not issued by this agent")
        case .reused: throw SmartcarError(.stateMismatch, "the redirect's state was already used")
        case .expired: throw SmartcarError(.stateMismatch, "the redirect's state has expired; start Connect again")
        }
        if let connectError = redirect.connectError { throw connectError }
        guard case .code(let code, _) = redirect else { throw SmartcarError(.stateMismatch, "the redirect URL carries no code") }
        return try await exchange(code: code, key: key ?? issued.key, redirectURI: issued.redirectURI, flags: nil)
    }

    private func exchangeCode(_ params: ExchangeCodeParams) async throws -> TokenSummary {
        let key = try params.key.map { key throws(ResponseError) in try validatedKey(key) }
        guard !params.code.isEmpty else { throw ResponseError.invalidParams("invalid params: 'code' must not be empty") }
        return try await exchange(code: params.code, key: key, redirectURI: params.redirectURI ?? setup.configuration.redirectURI, flags: params.flags)
    }

    /// Exchanges a code, names the tokens (by `key`, or by the Smartcar user id), stores and returns them.
    private func exchange(code: String, key: String?, redirectURI: String?, flags: FeatureFlags?) async throws -> TokenSummary {
        let grant = try await smartcar.exchangeCode(code, redirectURI: redirectURI, flags: flags)
        func store(under name: String) async throws -> StoredToken {
            let token = StoredToken(
                key: name, accessToken: grant.accessToken, refreshToken: grant.refreshToken, expiresAt: grant.expiresAt,
                refreshExpiresAt: grant.refreshExpiresAt, scope: nil, generation: 0, lastRefreshedAt: setup.clock.now(), needsReauth: false)
            return try await tokens.save(token, reason: "exchanged")
        }
        if let key { return TokenSummary(try await store(under: key), now: setup.clock.now()) }
        let userID: String
        do {
            userID = try await smartcar.userID(accessToken: grant.accessToken)
        } catch {
            // The code is spent: dropping its tokens would send the owner through Connect again. They are
            // stored under a key of their own, which the error names.
            let provisional = "unidentified-user-" + ConnectStates.generate().prefix(12)
            _ = try await store(under: provisional)
            var failure = error
            failure.message += "; the tokens are stored under the key '\(provisional)' (data.storedAs)"
            failure.details["storedAs"] = .string(provisional)
            throw failure
        }
        return TokenSummary(try await store(under: userID), now: setup.clock.now())
    }

    // MARK: Tokens

    private func getToken(_ params: GetTokenParams) async throws -> TokenSummary {
        let key = try validatedKey(params.key)
        let minValidity = params.minValidity ?? 300
        guard (0...3600).contains(minValidity) else {
            throw ResponseError.invalidParams("invalid params: 'minValidity' must be between 0 and 3600 seconds")
        }
        let token = try await tokens.token(for: key, minValidity: minValidity, forceRefresh: params.forceRefresh ?? false)
        return TokenSummary(token, now: setup.clock.now())
    }

    private func appToken(_ params: AppTokenParams) async throws -> JSONValue {
        let token = try await appTokens.token(forceRefresh: params.forceRefresh ?? false)
        let now = setup.clock.now()
        return [
            "accessToken": .string(token.accessToken),
            "tokenType": .string(token.tokenType),
            "expiresAt": .string(RFC3339.string(token.expiresAt)),
            "expiresIn": .int(Int64(max(0, token.expiresAt.timeIntervalSince(now).rounded(.down)))),
        ]
    }

    private func storeToken(_ params: StoreTokenParams) async throws -> TokenSummary {
        let key = try validatedKey(params.key)
        guard !params.accessToken.isEmpty else { throw ResponseError.invalidParams("invalid params: 'accessToken' must not be empty") }
        guard !params.refreshToken.isEmpty else { throw ResponseError.invalidParams("invalid params: 'refreshToken' must not be empty") }
        guard let expiresAt = RFC3339.date(params.expiresAt) else {
            throw ResponseError.invalidParams("invalid params: 'expiresAt' must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
        }
        var refreshExpiresAt: Date?
        if let text = params.refreshExpiresAt {
            guard let date = RFC3339.date(text) else {
                throw ResponseError.invalidParams("invalid params: 'refreshExpiresAt' must be an RFC 3339 time such as 2026-03-31T12:00:00Z")
            }
            refreshExpiresAt = date
        }
        let token = StoredToken(
            key: key, accessToken: params.accessToken, refreshToken: params.refreshToken, expiresAt: expiresAt,
            refreshExpiresAt: refreshExpiresAt, scope: params.scope, generation: 0, lastRefreshedAt: nil, needsReauth: false)
        let saved = try await tokens.save(token, reason: "stored")
        return TokenSummary(saved, now: setup.clock.now())
    }

    private func forgetToken(_ params: KeyParams) async throws -> JSONValue {
        let existed = try await tokens.forget(try validatedKey(params.key))
        return ["key": .string(params.key), "existed": .bool(existed)]
    }

    private func listTokens() async throws -> JSONValue {
        let rows = try await tokens.list()
        let now = setup.clock.now()
        return ["tokens": .array(rows.map { row in
            [
                "key": .string(row.key),
                "expiresAt": .string(RFC3339.string(row.expiresAt)),
                "refreshExpiresAt": row.refreshExpiresAt.map { .string(RFC3339.string($0)) } ?? .null,
                "state": .string(row.needsReauth ? "reauthRequired" : row.expiresAt > now ? "valid" : "expired"),
                "generation": .int(row.generation),
                "lastRefreshedAt": row.lastRefreshedAt.map { .string(RFC3339.string($0)) } ?? .null,
            ]
        })]
    }

    /// Runs the periodic chores: refreshing keys whose refresh token nears its end, and retrying writes that
    /// failed. Returns when the task is cancelled.
    public func runMaintenance(every interval: Duration = .seconds(600)) async {
        while !Task.isCancelled {
            let window = setup.settings.refreshWindowDays * 86_400
            if window > 0 {
                let refreshed = await tokens.refreshKeys(expiringBefore: setup.clock.now().addingTimeInterval(window), limit: 1000)
                if refreshed > 0 { setup.logger.info("refreshed \(refreshed) keys whose refresh token was nearing its end") }
            }
            let pending = await tokens.writeAllUnsaved()
            try? await Task.sleep(for: pending > 0 ? .seconds(1) : interval)
        }
    }

    // MARK: Errors

    /// Maps any failure to the JSON-RPC error a client sees; never includes a secret.
    private func responseError(for error: any Error) -> ResponseError {
        switch error {
        case let error as SmartcarError:
            return error.responseError
        case AgentError.unknownKey(let key):
            var response = SmartcarError(.unknownKey, "no tokens are stored for key '\(key)'; connect the vehicle first").responseError
            response.data = withConnectURL(response.data, key: key)
            return response
        case AgentError.reauthRequired(let key, let reason, let upstream):
            var response = (upstream ?? SmartcarError(.reauthRequired, "")).responseError
            response.message = "\(reason); the user must go through Connect again for key '\(key)'"
            response.data = withConnectURL(response.data, key: key)
            return response
        case AgentError.storage(let underlying):
            return SmartcarError(.storageError, "the token store failed: \(underlying)").responseError
        case is CancellationError:
            return .cancelled
        default:
            setup.logger.error("internal error: \(type(of: error))")
            return .internalError("internal error")
        }
    }

    /// Adds a fresh Connect URL (whose state remembers `key`) to an error's data.
    private func withConnectURL(_ data: JSONValue?, key: String) -> JSONValue? {
        guard case .object(var members) = data ?? .object([:]) else { return data }
        members["key"] = .string(key)
        if let (url, _) = try? connectURL(ConnectOptions(), key: key) { members["connectURL"] = .string(url) }
        return .object(members)
    }
}
