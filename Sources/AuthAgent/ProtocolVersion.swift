import AgentSupport

extension AgentVersion {
    /// The version of the JSON-RPC protocol described in `Protocol/README.md`, reported by `initialize`;
    /// it changes with the protocol, not with each release of the agent.
    package static let protocolVersion = "1.0"
}
