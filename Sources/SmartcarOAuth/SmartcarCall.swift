/// The four things the client asks Smartcar, and what each implies for retries and error wording.
enum SmartcarCall: Sendable {
    case exchange, refresh, applicationToken, user

    var name: String {
        switch self {
        case .exchange: "code exchange"
        case .refresh: "token refresh"
        case .applicationToken: "application token request"
        case .user: "user lookup"
        }
    }

    /// Whether a resend could spend something twice (a code is single-use, a refresh token rotates).
    var isSingleUse: Bool { self == .exchange || self == .refresh }

    /// Whether the request carries the client credentials (so a bare 401 means they were refused).
    var sendsClientCredentials: Bool { self != .user }

    /// What the caller should know when a single-use request may have been processed without an answer.
    var mayHaveReachedServerNote: String? {
        switch self {
        case .exchange: "the authorization code may have been used; ask the user to connect again if a retry fails"
        case .refresh:
            "the refresh may have reached Smartcar and rotated the refresh token; a retry with the same token may be refused"
        case .applicationToken, .user: nil
        }
    }
}
