import JSONRPC
import WireFormats

/// Every failure the agent reports about Smartcar or its own configuration, with a stable `kind` (the
/// machine-readable contract clients switch on) and a human-readable `message`.
///
/// Neither `message` nor `details` ever holds a secret (client secret, token, authorization code): upstream
/// text is redacted before it lands here, and request bodies and headers are never copied in.
public struct SmartcarError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error table's kinds; `rawValue` is the `error.data.kind` string.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case configurationError, invalidClient, invalidGrant, reauthRequired, rateLimited, upstreamUnavailable
        case upstreamError, stateMismatch, connectError, unknownKey, storageError
        /// A caller's argument is unusable (e.g. a redirect URL that is not one); answered as -32602.
        case invalidParams
        /// The caller's task was cancelled while waiting on Smartcar; answered as -32800.
        case cancelled

        /// The JSON-RPC error code from the error table.
        public var code: Int {
            switch self {
            case .configurationError: -32001
            case .invalidClient: -32002
            case .invalidGrant: -32003
            case .reauthRequired: -32004
            case .rateLimited: -32005
            case .upstreamUnavailable: -32006
            case .upstreamError: -32007
            case .stateMismatch: -32008
            case .connectError: -32009
            case .unknownKey: -32010
            case .storageError: -32011
            case .invalidParams: ResponseError.Code.invalidParams
            case .cancelled: ResponseError.Code.requestCancelled
            }
        }
    }

    public var kind: Kind
    public var message: String
    /// What Smartcar said and what we know (`status`, `error`, `code`, `description`, `requestId`,
    /// `resolution`, `suggestedUserMessage`, `docURL`, `retryAfter`, `retried`, `mayHaveReachedServer`).
    public var details: [String: JSONValue]

    public init(_ kind: Kind, _ message: String, details: [String: JSONValue] = [:]) {
        self.kind = kind
        self.message = message
        self.details = details
    }

    /// The JSON-RPC error: code from the table, `data` = `details` plus `kind`.
    public var responseError: ResponseError {
        var data = details
        data["kind"] = .string(kind.rawValue)
        return ResponseError(code: kind.code, message: message, data: .object(data))
    }

    public var description: String { "\(kind.rawValue): \(message)" }

    static func configuration(_ message: String) -> SmartcarError { SmartcarError(.configurationError, message) }
    static func invalidParams(_ message: String) -> SmartcarError { SmartcarError(.invalidParams, message) }
    static let cancelled = SmartcarError(.cancelled, "the request was cancelled while waiting for Smartcar")
}
