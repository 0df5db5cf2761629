import Foundation
import JSONRPC
import SmartcarOAuth

// The params of each method, decoded straight from the message. Field names are the protocol's.

struct InitializeParams: Decodable {
    struct ClientInfo: Decodable { var name: String; var version: String? }
    var processId: Int32?
    var clientInfo: ClientInfo?
    /// Opt-in to agent → client notifications (`tokenChanged`, `reauthRequired`, `window/logMessage`).
    var notifications: Bool?
}

struct GetTokenParams: Decodable {
    var key: String
    var minValidity: Double?
    var forceRefresh: Bool?
}

struct ExchangeCodeParams: Decodable {
    var code: String
    var key: String?
    var redirectURI: String?
    var flags: FeatureFlags?
}

struct HandleRedirectParams: Decodable {
    var url: String
    var key: String?
}

struct AppTokenParams: Decodable {
    var forceRefresh: Bool?
}

struct StoreTokenParams: Decodable {
    var key: String
    var accessToken: String
    var refreshToken: String
    var expiresAt: String
    var refreshExpiresAt: String?
    var scope: String?
}

struct KeyParams: Decodable {
    var key: String
}

/// `buildConnectURL` takes the Connect options plus, optionally, the key the resulting tokens are for.
struct ConnectKeyParams: Decodable {
    var key: String?
}

struct AdvanceClockParams: Decodable {
    var seconds: Double
}

/// Checks a key: non-empty, at most 512 characters, no control characters.
func validatedKey(_ key: String, field: String = "key") throws(ResponseError) -> String {
    guard !key.isEmpty else { throw .invalidParams("invalid params: '\(field)' must not be empty") }
    guard key.count <= 512 else { throw .invalidParams("invalid params: '\(field)' is longer than 512 characters") }
    guard !key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
        throw .invalidParams("invalid params: '\(field)' must not contain control characters")
    }
    return key
}
