import Foundation

/// A Connect `state` issued for the store's application: remembered until consumed or expired, so that any
/// agent on the store can accept the redirect it belongs to, once.
package struct ConnectState: Sendable, Equatable {
    package var state: String
    /// The key the tokens are meant for, if the Connect URL named one.
    package var key: String?
    /// The Connect options the URL was built with (redirect URI, scope, mode…), as text the agent defines.
    package var options: String?
    package var expiresAt: Date

    package init(state: String, key: String? = nil, options: String? = nil, expiresAt: Date) {
        self.state = state
        self.key = key
        self.options = options
        self.expiresAt = expiresAt
    }
}

/// What consuming a state found.
package enum StateClaim: Sendable, Equatable {
    /// This caller consumed it: nobody else ever will.
    case valid(ConnectState)
    /// Already consumed (by this or another process).
    case reused
    /// Issued, never consumed, but its time ran out.
    case expired
    /// Never issued for this application, or pruned.
    case unknown
}
