import WireFormats

/// Every failure of a call to Smartcar, or of the configuration it needs, with a stable `kind` and a
/// human-readable `message`. It knows nothing of the protocol that reports it: the agent maps each kind to
/// its error code.
///
/// Neither `message` nor `details` ever holds a secret (client secret, token, authorization code): upstream
/// text is redacted before it lands here, and request bodies and headers are never copied in.
package struct SmartcarError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: String, Sendable, CaseIterable {
        /// The client id, secret or redirect URI the call needs is missing or unusable.
        case configurationError
        /// Smartcar refused the client credentials.
        case invalidClient
        /// Smartcar refused an authorization code.
        case invalidGrant
        /// Smartcar refused a refresh token: the owner must connect again.
        case reauthRequired
        case rateLimited
        /// No usable answer: the network failed, timed out, or Smartcar answered 5xx.
        case upstreamUnavailable
        /// Any other answer Smartcar should not have given.
        case upstreamError
        /// Connect redirected with `error=...`.
        case connectError
        /// An argument cannot be sent (an empty code, a redirect URL that is not one).
        case invalidArgument
        /// The caller's task was cancelled while waiting on Smartcar.
        case cancelled
    }

    package var kind: Kind
    package var message: String
    /// What Smartcar said and what we know (`status`, `error`, `code`, `description`, `requestId`,
    /// `resolution`, `suggestedUserMessage`, `docURL`, `retryAfter`, `retried`, `mayHaveReachedServer`).
    package var details: [String: JSONValue]
    /// The refresh token a 200 answer carried when the answer was otherwise unusable (no access token, a
    /// lifetime under a second, ...): Smartcar has rotated the token, so this one is now the only valid
    /// refresh token of the grant, and whoever stored the old one must store this one in its place. Only
    /// on `upstreamError`s of a refresh or a code exchange. Never printed: not in `message`, `details`,
    /// `description` or reflection.
    package var rotatedRefreshToken: RedactedSecret?

    package init(
        _ kind: Kind, _ message: String, details: [String: JSONValue] = [:], rotatedRefreshToken: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.details = details
        self.rotatedRefreshToken = rotatedRefreshToken.map(RedactedSecret.init)
    }

    package var description: String { "\(kind.rawValue): \(message)" }

    static func configuration(_ message: String) -> SmartcarError { SmartcarError(.configurationError, message) }
    static func invalidArgument(_ message: String) -> SmartcarError { SmartcarError(.invalidArgument, message) }
    static let cancelled = SmartcarError(.cancelled, "the request was cancelled while waiting for Smartcar")
}

/// A secret that prints, debug-prints and reflects as `<redacted>`; `value` is the only way to it.
package struct RedactedSecret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    package let value: String

    package init(_ value: String) { self.value = value }

    package var description: String { "<redacted>" }
    package var debugDescription: String { "<redacted>" }
    package var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
