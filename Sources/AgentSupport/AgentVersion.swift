/// The agent's version, the one place it is written: reported by `--version`, `initialize` and `status`, and
/// sent in the User-Agent header (`SmartcarClient`'s default). Here because both SmartcarOAuth and the agent see it.
package enum AgentVersion {
    package static let current = "0.1.0"
}
