import AgentSupport
import Foundation
import JSONRPC
import SmartcarOAuth
import Synchronization
import TokenStore
import WireFormats

/// The agent: the protocol's methods (declared in `MethodTable`, grouped by concern in `Methods/`) on top of
/// Smartcar OAuth and the token store; it routes each message and keeps the session's state. One per process.
package final class Agent: Sendable {
    /// Everything the agent is built from; the executable fills it from the command line and the environment.
    package struct Setup: Sendable {
        package var configuration: SmartcarConfiguration
        package var store: any TokenStore
        /// Where the store lives, for `status` (a path or `memory`).
        package var storeDescription: String
        /// How the store seals tokens, for `status` ("none" when unsealed).
        package var storeSealing: String
        package var transport: any HTTPTransport
        package var clock: any WallClock
        /// Present only with `--allow-clock-control`: `$/advanceClock` moves it.
        package var adjustableClock: AdjustableClock?
        package var logger: Logger
        package var settings: AgentSettings

        package init(
            configuration: SmartcarConfiguration, store: any TokenStore, storeDescription: String,
            transport: any HTTPTransport, clock: any WallClock, adjustableClock: AdjustableClock?,
            logger: Logger, settings: AgentSettings, storeSealing: String = "none"
        ) {
            self.configuration = configuration
            self.storeSealing = storeSealing
            self.store = store
            self.storeDescription = storeDescription
            self.transport = transport
            self.clock = clock
            self.adjustableClock = adjustableClock
            self.logger = logger
            self.settings = settings
        }
    }

    private struct Lifecycle {
        var initialized = false
        var shutdownRequested = false
        var exitCode: Int32?
    }

    let setup: Setup
    let smartcar: SmartcarClient
    let tokens: TokenManager
    let appTokens: AppTokenCache
    let upstream: UpstreamLimiter
    let notifier: Notifier
    /// The one `connect` waiting for its redirect, if any.
    let loopbackConnect = LoopbackConnectSlot()
    let startedAt = Date()
    private let lifecycle = Mutex(Lifecycle())
    /// The requests this agent answers, by name (`MethodTable`).
    private let methods: [String: any AgentMethod.Type]

    package init(_ setup: Setup) {
        self.setup = setup
        methods = MethodTable.requests(offeredIn: setup)
        let smartcar = SmartcarClient(
            configuration: setup.configuration, transport: setup.transport, clock: setup.clock, logger: setup.logger)
        self.smartcar = smartcar
        let upstream = UpstreamLimiter(limit: setup.settings.maxUpstreamConcurrency)
        self.upstream = upstream
        appTokens = AppTokenCache(smartcar: smartcar, clock: setup.clock)
        let notifier = Notifier()
        self.notifier = notifier
        // `--request-timeout` governs refreshes too: the lease is sized to cover a whole call (the timeout is its
        // budget, retries included), and renewed before a refresh whose answer was lost is sent again, so no
        // other process spends the same refresh token while this one may still get its answer.
        let budget = setup.configuration.requestTimeout.components
        let callSeconds = Double(budget.seconds) + Double(budget.attoseconds) / 1e18
        tokens = TokenManager(
            store: setup.store, smartcar: smartcar, upstream: upstream, clock: setup.clock, logger: setup.logger,
            settings: .init(
                leaseDuration: max(setup.settings.leaseSeconds, callSeconds + 5),
                refreshAhead: setup.settings.refreshAheadSeconds),
            onEvent: notifier.send)
    }

    /// The process exit code the lifecycle decided (`exit` after `shutdown` → 0, without → 1); nil if none did.
    package var exitCode: Int32? { lifecycle.withLock { $0.exitCode } }

    // MARK: Lifecycle

    /// True once `shutdown` was answered: every request but `exit` is refused.
    var isShuttingDown: Bool { lifecycle.withLock { $0.shutdownRequested } }

    /// Marks the first `initialize`; false when one came before.
    func beginSession() -> Bool {
        lifecycle.withLock { state in
            defer { state.initialized = true }
            return !state.initialized
        }
    }

    /// From now on every request but this one is refused.
    func beginShutdown() { lifecycle.withLock { $0.shutdownRequested = true } }

    /// Decides the exit code: 0 after `shutdown`, 1 without.
    func endSession() -> Int32 {
        lifecycle.withLock { state in
            let code: Int32 = state.shutdownRequested ? 0 : 1
            state.exitCode = code
            return code
        }
    }

    /// Builds a Connect URL and issues its state in the store (with the Connect options and key), for the
    /// `handleRedirect` of any agent on the store.
    func connectURL(_ options: ConnectOptions, key: String?) async throws -> (url: String, state: String) {
        var options = options
        let state = options.state ?? ConnectStateRecord.generate()
        options.state = state
        let url = try ConnectURL.build(options, state: state, configuration: setup.configuration)
        // What the URL asked for, defaults resolved: the redirect must use the same redirect URI, and a
        // re-authorization the same access in the same mode, whatever the configuration says later.
        var asked = options
        asked.redirectURI = options.redirectURI ?? setup.configuration.redirectURI
        asked.mode = options.mode ?? setup.configuration.mode
        let now = setup.clock.now()
        let issued = ConnectState(
            state: state, key: key, options: ConnectStateRecord.text(asked),
            expiresAt: now.addingTimeInterval(setup.settings.stateTTLSeconds))
        do {
            try await setup.store.issueState(issued, capacity: ConnectStateRecord.capacity, now: now)
        } catch {
            throw AgentError.storage(error)
        }
        return (url.absoluteString, state)
    }

    /// For the end of input or a SIGTERM, before the process exits: keeps writing tokens whose write failed
    /// for at most `seconds` (they are retried in the background anyway), and answers the keys still at risk,
    /// already logged as an error.
    package func drainUnsaved(within seconds: TimeInterval) async -> [String] {
        await tokens.drainUnsaved(within: seconds)
    }

    /// Runs the periodic chore: refreshing keys whose refresh token nears its end (writes that failed are
    /// retried by the token manager's own background writer). Returns when the task is cancelled.
    package func runMaintenance(every interval: Duration = .seconds(600)) async {
        while !Task.isCancelled {
            let window = setup.settings.refreshWindowDays * 86_400
            if window > 0 {
                let refreshed = await tokens.refreshKeys(
                    expiringBefore: setup.clock.now().addingTimeInterval(window), limit: 1000)
                if refreshed > 0 {
                    setup.logger.info("refreshed \(refreshed) keys whose refresh token was nearing its end")
                }
            }
            _ = try? await setup.store.pruneStates(now: setup.clock.now())
            try? await Task.sleep(for: interval)
        }
    }
}

extension Agent: MessageHandler {
    package func immediateReply(to request: IncomingMessage) -> ImmediateReply? {
        if isShuttingDown { return .error(responseError(for: Self.shuttingDown, from: Shutdown.self)) }
        guard let method = methods[request.method] else {
            return .error(.methodNotFound(request.method))
        }
        return method.immediateReply(to: request, agent: self)
    }

    package func handle(_ request: IncomingMessage, context: PeerContext, reply: Reply) async {
        guard let method = methods[request.method] else {
            return reply(error: .methodNotFound(request.method))
        }
        // `shutdown` may have arrived between this request and its task.
        if isShuttingDown { return reply(error: responseError(for: Self.shuttingDown, from: method)) }
        await method.answer(request, agent: self, context: context, reply: reply)
    }

    package func handle(notification: IncomingMessage, context: PeerContext) {
        MethodTable.notification(named: notification.method)?.handle(notification, agent: self, context: context)
            ?? setup.logger.debug("ignoring notification '\(notification.method)'")
    }

    /// A `connect` waiting for its redirect ends: nobody would read its answer.
    package func inputEnded() { loopbackConnect.endInput() }

    private static let shuttingDown = AgentError.invalidRequest(
        "the agent is shutting down; only the 'exit' notification is accepted")
}
