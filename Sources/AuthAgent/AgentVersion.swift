/// The agent's version, reported by `--version`, `initialize`, `status` and the User-Agent header.
public enum AgentVersion {
    public static let current = "0.1.0"
    /// The version of the JSON-RPC protocol described in `Protocol/README.md`.
    public static let protocolVersion = "1.0"
}
