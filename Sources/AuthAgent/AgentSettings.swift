/// The numbers the agent's behaviour is tuned by; the defaults here are the command line's defaults.
package struct AgentSettings: Sendable, Equatable {
    /// Most refreshes in flight to Smartcar at once, across all keys.
    package var maxUpstreamConcurrency = 32
    /// How long a Connect state stays valid.
    package var stateTTLSeconds: Double = 15 * 60
    /// How long a refresh lease on a key lasts; a refresh's Smartcar call is kept well inside it.
    package var leaseSeconds: Double = 20
    /// Idle keys whose refresh token ends within this many days are refreshed in the background.
    package var refreshWindowDays: Double = 7
    /// Seconds before a caller's `minValidity` stops being met at which a key it asks for is refreshed in the
    /// background (per-key jitter and a cap by the token's lifetime apply: `RefreshAhead`); 0 turns it off.
    package var refreshAheadSeconds: Double = 900

    package init() {}
}
