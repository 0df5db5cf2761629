import SmartcarOAuth

/// Failures the agent itself decides on (Smartcar's arrive as `SmartcarError`). `Agent.responseError` turns
/// each into its protocol error through `ErrorKind`.
enum AgentError: Error {
    /// A param breaks a rule beyond its JSON type; the message names the field.
    case invalidParams(String)
    /// A request that is not allowed now (a second `initialize`, anything after `shutdown`).
    case invalidRequest(String)
    /// No tokens for the key; `otherApplication`: another application on the store has the key (its tokens
    /// are never used), so the client learns why a key it sees in the store is unknown to this agent.
    case unknownKey(String, otherApplication: Bool = false)
    case reauthRequired(String, reason: String, upstream: SmartcarError? = nil)
    case storage(any Error)
    /// A redirect whose `state` this agent did not issue, or that was used or expired.
    case stateMismatch(String)
    /// `connect` could not listen on its redirect URI's port (taken, or not allowed).
    case portUnavailable(String, redirectURI: String)
    /// `connect`'s redirect did not come within its timeout.
    case connectTimeout(String, redirectURI: String, seconds: Double)
}
