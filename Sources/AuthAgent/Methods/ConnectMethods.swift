import JSONRPC
import SmartcarOAuth
import TokenStore
import WireFormats

// Connect: building the URL, taking the redirect back, and exchanging its code for tokens.

enum BuildConnectURL: AgentMethod {
    static let name = "buildConnectURL"
    static let errors: Set<ErrorKind> = [.configurationError, .storageError]

    /// The Connect options plus, optionally, the key the resulting tokens are for.
    struct Params: MethodParams {
        var options: ConnectOptions
        var key: String?

        private enum Keys: String, CodingKey { case key }

        init(from decoder: any Decoder) throws {
            options = try ConnectOptions(from: decoder)
            key = try decoder.container(keyedBy: Keys.self).decodeIfPresent(String.self, forKey: .key)
        }

        func validate() throws(AgentError) {
            if let key { try validateKey(key) }
            try Limits.check(options.state, field: "state", max: Limits.state)
            try Limits.check(options.redirectURI, field: "redirectURI", max: Limits.redirectURI)
            try Limits.check(options.make, field: "make", max: Limits.make)
            try Limits.check(options.singleSelectVIN, field: "singleSelectVIN", max: Limits.vin)
            try Limits.check(options.user, field: "user", max: Limits.user)
            try Limits.check(options.scope, field: "scope", maxCount: Limits.permissions, max: Limits.permission)
            try Limits.check(options.flags)
        }
    }

    static func run(_ params: Params, agent: Agent, context: PeerContext) async throws -> JSONValue {
        let (url, state) = try await agent.connectURL(params.options, key: params.key)
        return ["url": .string(url), "state": .string(state)]
    }
}

enum HandleRedirect: AgentMethod {
    static let name = "handleRedirect"
    static let errors: Set<ErrorKind> = ExchangeCode.errors.union([.stateMismatch, .connectError])

    struct Params: MethodParams {
        var url: String
        var key: String?

        func validate() throws(AgentError) {
            if let key { try validateKey(key) }
            try Limits.check(url, field: "url", max: Limits.url)
        }
    }

    static func run(_ params: Params, agent: Agent, context: PeerContext) async throws -> TokenSummary {
        try await agent.completeRedirect(url: params.url, key: params.key)
    }
}

enum Connect: AgentMethod {
    static let name = "connect"
    static let errors: Set<ErrorKind> = HandleRedirect.errors.union([.portUnavailable, .connectTimeout])
    /// The notification that hands the client the Connect URL to open, before the wait.
    static let urlNotification = "connectURL"
    static let defaultTimeout = 300.0
    static let maxTimeout = 3600.0

    /// `buildConnectURL`'s params (the redirect URI a loopback one) and how long to wait for the redirect.
    struct Params: MethodParams {
        var connect: BuildConnectURL.Params
        var timeout: Double?

        private enum Keys: String, CodingKey { case timeout }

        init(from decoder: any Decoder) throws {
            connect = try BuildConnectURL.Params(from: decoder)
            timeout = try decoder.container(keyedBy: Keys.self).decodeIfPresent(Double.self, forKey: .timeout)
        }

        func validate() throws(AgentError) {
            try connect.validate()
            if let timeout, !(timeout >= 1 && timeout <= Connect.maxTimeout) {
                throw .invalidParams("invalid params: 'timeout' must be from 1 to \(Int(Connect.maxTimeout)) seconds")
            }
        }
    }

    static func run(_ params: Params, agent: Agent, context: PeerContext) async throws -> TokenSummary {
        try await agent.connectThroughLoopback(
            params.connect.options, key: params.connect.key, timeoutSeconds: params.timeout ?? defaultTimeout,
            context: context)
    }
}

enum ExchangeCode: AgentMethod {
    static let name = "exchangeCode"
    static let errors: Set<ErrorKind> = ErrorKind.upstream.union([.invalidGrant, .storageError])

    struct Params: MethodParams {
        var code: String
        var key: String?
        var redirectURI: String?
        var flags: FeatureFlags?

        func validate() throws(AgentError) {
            if let key { try validateKey(key) }
            guard !code.isEmpty else { throw .invalidParams("invalid params: 'code' must not be empty") }
            try Limits.check(code, field: "code", max: Limits.code)
            try Limits.check(redirectURI, field: "redirectURI", max: Limits.redirectURI)
            try Limits.check(flags)
        }
    }

    static func run(_ params: Params, agent: Agent, context: PeerContext) async throws -> TokenSummary {
        let redirectURI = params.redirectURI ?? agent.setup.configuration.redirectURI
        return try await agent.exchange(
            code: params.code, key: params.key, redirectURI: redirectURI, flags: params.flags)
    }
}

extension Agent {
    /// Completes Connect from the URL it redirected to: checks and spends the state (issued by an agent on this
    /// store), reports a Connect error, or exchanges the code and stores the tokens under `key` (or the key the
    /// state remembers, or the Smartcar user id).
    func completeRedirect(url: String, key: String?) async throws -> TokenSummary {
        let redirect = try ConnectRedirect.parse(url)
        guard let state = redirect.state else {
            throw AgentError.stateMismatch("the redirect URL carries no state; it was not started by this agent")
        }
        let issued: ConnectState
        let claim: StateClaim
        do {
            claim = try await setup.store.consumeState(state, now: setup.clock.now())
        } catch {
            throw AgentError.storage(error)
        }
        switch claim {
        case .valid(let found): issued = found
        case .unknown: throw AgentError.stateMismatch("the redirect's state was not issued by an agent on this store")
        case .reused: throw AgentError.stateMismatch("the redirect's state was already used")
        case .expired: throw AgentError.stateMismatch("the redirect's state has expired; start Connect again")
        }
        if let connectError = redirect.connectError { throw connectError }
        guard case .code(let code, _) = redirect else {
            throw AgentError.stateMismatch("the redirect URL carries no code")
        }
        return try await exchange(
            code: code, key: key ?? issued.key,
            redirectURI: ConnectStateRecord.options(issued.options).redirectURI, flags: nil,
            connectOptions: issued.options)
    }

    /// Exchanges a code, names the tokens (by `key`, or by the Smartcar user id), stores and returns them,
    /// with the Connect options the code was obtained with, if known (`ConnectStateRecord`).
    func exchange(
        code: String, key: String?, redirectURI: String?, flags: FeatureFlags?, connectOptions: String? = nil
    ) async throws -> TokenSummary {
        let grant = try await smartcar.exchangeCode(code, redirectURI: redirectURI, flags: flags)
        func store(under name: String) async throws -> TokenSummary {
            let token = StoredToken(
                key: name, accessToken: grant.accessToken, refreshToken: grant.refreshToken, expiresAt: grant.expiresAt,
                refreshExpiresAt: grant.refreshExpiresAt, scope: nil, generation: 0, lastRefreshedAt: setup.clock.now(),
                needsReauth: false, connectOptions: connectOptions)
            return TokenSummary(try await tokens.save(token, kind: .exchanged), now: setup.clock.now())
        }
        if let key { return try await store(under: key) }
        let userID: String
        do {
            userID = try await smartcar.userID(accessToken: grant.accessToken)
        } catch {
            // The code is spent: dropping its tokens would send the owner through Connect again. They are
            // stored under a key of their own, which the error names.
            let provisional = "unidentified-user-" + ConnectStateRecord.generate().prefix(12)
            _ = try await store(under: provisional)
            var failure = error
            failure.message += "; the tokens are stored under the key '\(provisional)' (data.storedAs)"
            failure.details["storedAs"] = .string(provisional)
            throw failure
        }
        return try await store(under: userID)
    }
}
