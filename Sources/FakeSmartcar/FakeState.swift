import Foundation

/// Everything the fake remembers, kept behind one `Mutex` by `FakeService`.
struct FakeState: Sendable {
    struct IssuedCode: Sendable {
        var redirectURI: String?
        var userID: String
        /// The application it was issued to: only that client may exchange it.
        var clientID: String
        var expiresAt: Date
        var used = false
    }

    struct AccessGrant: Sendable {
        var userID: String
        var expiresAt: Date
    }

    struct RefreshGrant: Sendable {
        var userID: String
        /// The application it was issued to: only that client may refresh it.
        var clientID: String
        var expiresAt: Date
        /// When it was first exchanged; nil while live.
        var usedAt: Date?
    }

    struct PendingFault: Sendable {
        var fault: Fault
        var endpoint: Endpoint?
        var remaining: Int
    }

    var codes: [String: IssuedCode] = [:]
    var accessTokens: [String: AccessGrant] = [:]
    var refreshTokens: [String: RefreshGrant] = [:]
    var appTokens: [String: Date] = [:]
    var log: [RecordedRequest] = []
    var counts: [Endpoint: Int] = [:]
    var faults: [PendingFault] = []
    var refusedRefreshes: [FakeSmartcar.RefusedRefresh] = []
    var crossClientGrants: [FakeSmartcar.CrossClientGrant] = []
    /// Refreshes that re-sent a spent refresh token inside the grace window (and got a new pair).
    var graceReuses = 0
    /// Smartcar requests received and not yet answered (or dropped), and the most there ever were at once.
    var inFlight = 0
    var peakInFlight = 0

    /// Takes one use of the oldest injected fault that applies to `endpoint`.
    mutating func takeFault(for endpoint: Endpoint) -> Fault? {
        guard let index = faults.firstIndex(where: { $0.endpoint == nil || $0.endpoint == endpoint }) else {
            return nil
        }
        let fault = faults[index].fault
        faults[index].remaining -= 1
        if faults[index].remaining <= 0 { faults.remove(at: index) }
        return fault
    }

    /// The grant behind `token` if exchanging it now would succeed: issued, not expired, and unused or
    /// reused within the grace window.
    func refreshTokenUsable(_ token: String, now: Date, reuse: FakeSmartcar.RefreshReuse) -> RefreshGrant? {
        guard let grant = refreshTokens[token], grant.expiresAt > now else { return nil }
        guard let usedAt = grant.usedAt else { return grant }
        guard case .grace(let seconds) = reuse, now.timeIntervalSince(usedAt) <= seconds else { return nil }
        return grant
    }

    /// A fresh access/refresh pair for `userID`, issued to the application `clientID`.
    mutating func mintPair(
        userID: String, clientID: String, now: Date, options: FakeSmartcar.Options
    ) -> (accessToken: String, refreshToken: String) {
        let access = FakeState.randomToken(prefix: "fake-at-")
        let refresh = FakeState.randomToken(prefix: "fake-rt-")
        accessTokens[access] = AccessGrant(userID: userID, expiresAt: now + TimeInterval(options.accessTokenLifetime))
        refreshTokens[refresh] = RefreshGrant(
            userID: userID, clientID: clientID, expiresAt: now + options.refreshTokenLifetime)
        return (access, refresh)
    }

    mutating func issueCode(
        redirectURI: String?, userID: String, clientID: String, now: Date, options: FakeSmartcar.Options
    ) -> String {
        let code = FakeState.randomToken(prefix: "fake-code-")
        codes[code] = IssuedCode(
            redirectURI: redirectURI, userID: userID, clientID: clientID, expiresAt: now + options.codeLifetime)
        return code
    }

    /// A readable prefix and 128 random bits in hex (recorded for the test run's scan of its stores).
    static func randomToken(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef")
        var token = prefix
        for _ in 0..<16 {
            let byte = UInt8.random(in: .min ... .max, using: &generator)
            token.append(digits[Int(byte >> 4)])
            token.append(digits[Int(byte & 0xF)])
        }
        EvidenceValues.record(token)
        return token
    }
}
