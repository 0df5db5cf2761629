import AgentSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The Connect `mode`: real vehicles, Smartcar's test vehicles, or the vehicle simulator.
package enum SmartcarMode: String, Sendable, Codable, CaseIterable {
    case live, test, simulated
}

/// Who the agent is to Smartcar and where Smartcar lives.
///
/// Missing credentials are not an error here: the agent must start (and answer `buildConnectURL`-free
/// methods) without them, and each call that needs them fails with a `configurationError` naming the
/// variable to set. `description` never shows the secret.
package struct SmartcarConfiguration: Sendable, Equatable, CustomStringConvertible {
    package var clientID: String?
    package var clientSecret: String?
    /// The app's redirect URI, used when a caller does not give one.
    package var redirectURI: String?
    package var mode: SmartcarMode
    /// Connect (the browser flow); `/oauth/authorize` is appended.
    package var connectOrigin: URL
    /// Code exchange and refresh; `/oauth/token` is appended.
    package var authOrigin: URL
    /// Application tokens; `/oauth2/token` is appended.
    package var iamOrigin: URL
    /// The API; `/v2.0/user` is appended.
    package var apiOrigin: URL
    /// The whole budget of one call, retries and back-off included.
    package var requestTimeout: Duration

    package static let defaultConnectOrigin = URL(string: "https://connect.smartcar.com")!
    package static let defaultAuthOrigin = URL(string: "https://auth.smartcar.com")!
    package static let defaultIAMOrigin = URL(string: "https://iam.smartcar.com")!
    package static let defaultAPIOrigin = URL(string: "https://api.smartcar.com")!

    package init(
        clientID: String? = nil, clientSecret: String? = nil, redirectURI: String? = nil,
        mode: SmartcarMode = .live,
        connectOrigin: URL = Self.defaultConnectOrigin, authOrigin: URL = Self.defaultAuthOrigin,
        iamOrigin: URL = Self.defaultIAMOrigin, apiOrigin: URL = Self.defaultAPIOrigin,
        requestTimeout: Duration = .seconds(30)
    ) {
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURI = redirectURI
        self.mode = mode
        self.connectOrigin = connectOrigin
        self.authOrigin = authOrigin
        self.iamOrigin = iamOrigin
        self.apiOrigin = apiOrigin
        self.requestTimeout = requestTimeout
    }

    /// Reads `SMARTCAR_CLIENT_ID`, `SMARTCAR_CLIENT_SECRET`, `SMARTCAR_REDIRECT_URI`, `SMARTCAR_MODE`
    /// (`live` | `test` | `simulated`, default `live`) and `SMARTCAR_{CONNECT,AUTH,IAM,API}_ORIGIN`.
    /// Empty variables count as unset. `secretFile` (from `--client-secret-file`) wins over the environment,
    /// so the secret need not sit in the process environment; its trailing newline is dropped.
    /// Throws `configurationError` for an unusable value (naming the variable or path, never a secret).
    package static func fromEnvironment(
        _ env: [String: String], secretFile: String? = nil
    ) throws(SmartcarError) -> SmartcarConfiguration {
        func value(_ name: String) -> String? {
            guard let raw = env[name], !raw.isEmpty else { return nil }
            return raw
        }
        var configuration = SmartcarConfiguration(
            clientID: value("SMARTCAR_CLIENT_ID"),
            clientSecret: value("SMARTCAR_CLIENT_SECRET"),
            redirectURI: value("SMARTCAR_REDIRECT_URI"))
        if let secretFile {
            configuration.clientSecret = try readSecretFile(secretFile)
        }
        if let mode = value("SMARTCAR_MODE") {
            guard let parsed = SmartcarMode(rawValue: mode.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw .configuration("SMARTCAR_MODE must be live, test or simulated (got '\(mode)')")
            }
            configuration.mode = parsed
        }
        if let origin = value("SMARTCAR_CONNECT_ORIGIN") {
            configuration.connectOrigin = try parseOrigin(origin, variable: "SMARTCAR_CONNECT_ORIGIN")
        }
        if let origin = value("SMARTCAR_AUTH_ORIGIN") {
            configuration.authOrigin = try parseOrigin(origin, variable: "SMARTCAR_AUTH_ORIGIN")
        }
        if let origin = value("SMARTCAR_IAM_ORIGIN") {
            configuration.iamOrigin = try parseOrigin(origin, variable: "SMARTCAR_IAM_ORIGIN")
        }
        if let origin = value("SMARTCAR_API_ORIGIN") {
            configuration.apiOrigin = try parseOrigin(origin, variable: "SMARTCAR_API_ORIGIN")
        }
        return configuration
    }

    /// `scheme://host[:port]` with nothing after it (a lone trailing `/` is tolerated and dropped).
    /// The Python SDK takes a full token URL in `SMARTCAR_AUTH_ORIGIN`; we refuse one rather than guess.
    package static func parseOrigin(_ text: String, variable: String) throws(SmartcarError) -> URL {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else {
            throw .configuration(
                "\(variable) must be an origin like https://auth.smartcar.com (scheme, host and optional port)")
        }
        guard scheme == "https" || scheme == "http" else {
            throw .configuration("\(variable) must use https (or http for a loopback test server), not \(scheme)")
        }
        guard components.user == nil, components.password == nil else {
            throw .configuration("\(variable) must not contain a user name or password")
        }
        guard components.percentEncodedPath.isEmpty || components.percentEncodedPath == "/" else {
            throw .configuration(
                "\(variable) must be an origin without a path (got path '\(components.percentEncodedPath)'); the agent appends the endpoint path itself"
            )
        }
        guard components.percentEncodedQuery == nil, components.percentEncodedFragment == nil else {
            throw .configuration("\(variable) must be an origin without a query or fragment")
        }
        var trimmed = text
        if trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let url = URL(string: trimmed) else {
            throw .configuration("\(variable) is not a valid URL")
        }
        return url
    }

    /// Reads the secret file, held to the token store's rule (`PrivateFile.readSecret`).
    private static func readSecretFile(_ path: String) throws(SmartcarError) -> String {
        let bytes: [UInt8]
        do { bytes = try PrivateFile.readSecret(path, what: "client secret file") } catch {
            throw .configuration(error.message)
        }
        guard var secret = String(validating: bytes, as: UTF8.self) else {
            throw .configuration("the client secret file \(path) is not UTF-8 text")
        }
        while let last = secret.last, last == "\n" || last == "\r" || last == "\r\n" { secret.removeLast() }
        guard !secret.isEmpty else {
            throw .configuration("the client secret file \(path) is empty")
        }
        return secret
    }

    package var description: String {
        "SmartcarConfiguration(clientID: \(clientID ?? "not set"), clientSecret: \(clientSecret == nil ? "not set" : "set"), "
            + "redirectURI: \(redirectURI ?? "not set"), mode: \(mode.rawValue), connect: \(connectOrigin.absoluteString), "
            + "auth: \(authOrigin.absoluteString), iam: \(iamOrigin.absoluteString), api: \(apiOrigin.absoluteString), "
            + "requestTimeout: \(requestTimeout))"
    }
}

extension SmartcarConfiguration {
    /// The client id, or the `configurationError` every method that needs it answers.
    func requireClientID() throws(SmartcarError) -> String {
        guard let clientID, !clientID.isEmpty else {
            throw .configuration("SMARTCAR_CLIENT_ID is not set (set it in the agent's environment)")
        }
        return clientID
    }

    /// Both credentials, or a `configurationError` naming the one that is missing.
    func requireCredentials() throws(SmartcarError) -> (id: String, secret: String) {
        let id = try requireClientID()
        guard let clientSecret, !clientSecret.isEmpty else {
            throw .configuration(
                "SMARTCAR_CLIENT_SECRET is not set (set it in the agent's environment or pass --client-secret-file)")
        }
        return (id, clientSecret)
    }

    /// Credentials and tokens go only to https origins, or to plain http on this machine (test servers).
    /// Checked before any connection is opened.
    static func requireSafeOrigin(_ origin: URL, variable: String) throws(SmartcarError) {
        let scheme = origin.scheme?.lowercased()
        if scheme == "https" { return }
        if scheme == "http", let host = origin.host, LoopbackHost.isLoopback(host) { return }
        throw .configuration(
            "refusing to send credentials to \(origin.absoluteString): \(variable) must be https (plain http is allowed only for 127.0.0.0/8, ::1 or localhost)"
        )
    }
}
