import SmartcarOAuth

/// Failures the agent itself decides on (Smartcar's arrive as `SmartcarError`). `Agent.responseError` turns
/// each into its protocol error through `ErrorKind`.
enum AgentError: Error {
    /// A param breaks a rule beyond its JSON type; the message names the field.
    case invalidParams(String)
    /// A request that is not allowed now (a second `initialize`, anything after `shutdown`).
    case invalidRequest(String)
    case unknownKey(String)
    case reauthRequired(String, reason: String, upstream: SmartcarError? = nil)
    case storage(any Error)
    /// A redirect whose `state` this agent did not issue, or that was used or expired.
    case stateMismatch(String)
}
