/// What a caller may ask of a Connect URL. Every field is optional; absent ones are left out of the URL
/// (except `mode` and `redirectURI`, which fall back to the configuration).
package struct ConnectOptions: Sendable, Codable, Equatable {
    /// Permissions, joined by one space (`required:` prefixes pass through untouched).
    package var scope: [String]?
    /// Overrides the configured redirect URI.
    package var redirectURI: String?
    /// Overrides the configured mode.
    package var mode: SmartcarMode?
    /// `approval_prompt=force` when true, `auto` otherwise.
    package var forcePrompt: Bool?
    /// The caller's own state. Not sent by `ConnectURL.build`, which sends the state it is given (the
    /// agent's CSRF state); the agent keeps this one to hand back when the redirect comes in.
    package var state: String?
    /// Skips brand selection (`make=TESLA`).
    package var make: String?
    /// `single_select=true|false`.
    package var singleSelect: Bool?
    /// `single_select_vin`; implies `single_select=true` whatever `singleSelect` says (as the Python SDK).
    package var singleSelectVIN: String?
    package var flags: FeatureFlags?
    /// The developer's own id for the vehicle owner.
    package var user: String?

    package init(
        scope: [String]? = nil, redirectURI: String? = nil, mode: SmartcarMode? = nil, forcePrompt: Bool? = nil,
        state: String? = nil, make: String? = nil, singleSelect: Bool? = nil, singleSelectVIN: String? = nil,
        flags: FeatureFlags? = nil, user: String? = nil
    ) {
        self.scope = scope
        self.redirectURI = redirectURI
        self.mode = mode
        self.forcePrompt = forcePrompt
        self.state = state
        self.make = make
        self.singleSelect = singleSelect
        self.singleSelectVIN = singleSelectVIN
        self.flags = flags
        self.user = user
    }
}
