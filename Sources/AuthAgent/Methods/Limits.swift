import SmartcarOAuth

/// The longest value each string parameter may have, in UTF-8 bytes (Protocol/README.md, "Limits"): a
/// request can only make the agent hold, send or remember so much. `key` has its own rule (`validateKey`).
enum Limits {
    /// A key: 512 characters (`validateKey`), and at most this many bytes.
    static let keyBytes = 2048
    /// `buildConnectURL`'s `state`: kept in the store until consumed or expired (`ConnectState`).
    static let state = 1024
    /// Any redirect URI, and `handleRedirect`'s `url`.
    static let redirectURI = 2048
    static let url = 8192
    /// An authorization code.
    static let code = 2048
    /// `accessToken` and `refreshToken` of `storeToken`, `rejectedToken` of `getToken`.
    static let token = 8192
    /// `expiresAt` and `refreshExpiresAt` of `storeToken`.
    static let time = 64
    /// `storeToken`'s `scope`.
    static let scope = 4096
    /// `make`, `singleSelectVIN` and `user` of `buildConnectURL`.
    static let make = 64
    static let vin = 64
    static let user = 512
    /// `buildConnectURL`'s `scope`: so many permissions of so many bytes each.
    static let permissions = 100
    static let permission = 128
    /// `flags`: so many, names and string values of so many bytes each.
    static let flags = 64
    static let flagName = 128
    static let flagValue = 512
    /// `initialize`'s `clientInfo.name` and `clientInfo.version`.
    static let clientInfo = 256

    /// Refuses `value` when it is longer than `max` UTF-8 bytes, naming the field and the limit.
    static func check(_ value: String?, field: String, max: Int) throws(AgentError) {
        guard let value, value.utf8.count > max else { return }
        throw .invalidParams("invalid params: '\(field)' is longer than \(max) bytes (\(value.utf8.count))")
    }

    /// Refuses more than `maxCount` `values`, or one longer than `max` bytes.
    static func check(_ values: [String]?, field: String, maxCount: Int, max: Int) throws(AgentError) {
        guard let values else { return }
        guard values.count <= maxCount else {
            throw .invalidParams("invalid params: '\(field)' has more than \(maxCount) entries (\(values.count))")
        }
        for value in values { try check(value, field: field, max: max) }
    }

    /// Checks `flags` against the limits above.
    static func check(_ flags: FeatureFlags?, field: String = "flags") throws(AgentError) {
        guard let flags else { return }
        try check(flags.entries.map(\.name), field: field, maxCount: Limits.flags, max: flagName)
        for (name, value) in flags.entries {
            if case .string(let text) = value { try check(text, field: "\(field).\(name)", max: flagValue) }
        }
    }
}
