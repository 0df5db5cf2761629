/// The agent's version, the one place it is written: reported by `--version`, `initialize` and `status`, and
/// sent in the User-Agent header (`SmartcarClient`'s default). Here because both SmartcarOAuth and the agent see it.
public enum AgentVersion {
    public static let current = "0.1.0"
}
