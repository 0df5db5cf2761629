import AgentSupport
import Foundation
import SmartcarOAuth

/// The application token (client-credentials grant): kept in memory until shortly before it expires, and
/// fetched once however many callers ask at the same moment. Smartcar issues no refresh token for it.
actor AppTokenCache {
    private let smartcar: SmartcarClient
    private let clock: any WallClock
    /// A cached token is handed out only while it has more than this many seconds left.
    private let margin: TimeInterval
    private var cached: ApplicationToken?
    private var fetching: Task<ApplicationToken, any Error>?

    init(smartcar: SmartcarClient, clock: any WallClock, margin: TimeInterval = 60) {
        self.smartcar = smartcar
        self.clock = clock
        self.margin = margin
    }

    func token(forceRefresh: Bool) async throws -> ApplicationToken {
        if let fetching { return try await fetching.value }
        if !forceRefresh, let cached, cached.expiresAt.timeIntervalSince(clock.now()) > margin { return cached }
        let task = Task { [smartcar] in try await smartcar.applicationToken() }
        fetching = task
        defer { fetching = nil }
        let token = try await task.value
        cached = token
        return token
    }
}
