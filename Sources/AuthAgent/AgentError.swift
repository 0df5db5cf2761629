import SmartcarOAuth

/// Failures the agent itself decides on (the OAuth client's own failures arrive as `SmartcarError`).
/// Each becomes a JSON-RPC error with a stable code and `data.kind`; see the table in Protocol/README.md.
enum AgentError: Error {
    case unknownKey(String)
    case reauthRequired(String, reason: String, upstream: SmartcarError? = nil)
    case storage(any Error)
}
