import AgentSupport
import TokenStore

/// Keeps one agent coherent with the other agents on its store: a background task follows the store's change
/// log (one `ChangeFollower`, polled every `interval`, or as soon as the follower's `waitForChange` is told of a
/// change: PostgreSQL's notifications; a poll that finds nothing reads no table) and hands each
/// change another agent made to `onChange`, one at a time in the store's order, so the hot path never reads the
/// store yet stops serving a row another agent replaced. The agent's own changes are left out: it already holds
/// what it wrote. The tasks end when this is released.
final class StoreChangeWatch: Sendable {
    /// What the follower saw.
    enum Event: Sendable {
        /// Another agent changed a row of the application.
        case changed(StoreChange)
        /// Changes may have been missed (the store failed, or the follower fell behind the pruned log).
        case everything
    }

    /// The longest pause between polls: well under the 100 ms an agent may lag behind another's change.
    static let interval: Duration = .milliseconds(20)
    /// The shortest pause between polls woken by notifications: bounds the reads one agent makes while every
    /// agent of a fleet commits at once, for a few milliseconds of lag.
    static let minimumGap: Duration = .milliseconds(5)

    /// Takes the store's newest change as the mark to follow from; nil if the store failed (the follow loop
    /// then keeps trying, and drops everything once it succeeds).
    private let start: Task<(any ChangeFollower)?, Never>
    private let task: Task<Void, Never>

    init(store: any TokenStore, logger: Logger, onChange: @escaping @Sendable (Event) async -> Void) {
        let start = Task { () -> (any ChangeFollower)? in
            do throws(StoreError) {
                return try await store.changeFollower(after: try await store.latestChange())
            } catch {
                return nil
            }
        }
        self.start = start
        task = Task { await Self.follow(store, from: await start.value, logger: logger, onChange: onChange) }
    }

    deinit {
        start.cancel()
        task.cancel()
    }

    /// Returns once the follower has its mark (or failed to get one): a row read after this returns is
    /// followed. Read nothing to offer to the hot path before.
    func started() async { _ = await start.value }

    private static func follow(
        _ store: any TokenStore, from first: (any ChangeFollower)?, logger: Logger,
        onChange: @Sendable (Event) async -> Void
    ) async {
        var follower = first
        var failing = first == nil
        while !Task.isCancelled {
            do throws(StoreError) {
                if follower == nil {
                    follower = try await store.changeFollower(after: try await store.latestChange())
                    // Rows read while the store failed may be stale by now.
                    await onChange(.everything)
                }
                while let current = follower, try await drain(current, origin: store.origin, onChange) {}
                if failing { logger.notice("following the token store's changes again") }
                failing = false
            } catch  where error.kind == .closed {
                break
            } catch {
                if !failing { logger.warning("could not follow the token store's changes (\(error)); retrying") }
                failing = true
                await onChange(.everything)
            }
            if let follower, !failing {
                // Notifications coming faster than this (a refresh storm) are read together, not one poll each.
                let polled = ContinuousClock.now
                await follower.waitForChange(upTo: interval)
                try? await Task.sleep(until: polled + minimumGap)
            } else {
                try? await Task.sleep(for: interval)
            }
        }
        await follower?.close()
    }

    /// Hands one poll's changes on; answers whether more may be waiting.
    private static func drain(
        _ follower: any ChangeFollower, origin: String, _ onChange: @Sendable (Event) async -> Void
    ) async throws(StoreError) -> Bool {
        switch try await follower.poll() {
        case .changes(let changes):
            for change in changes where change.origin != origin { await onChange(.changed(change)) }
            return !changes.isEmpty
        case .fellBehind:
            await onChange(.everything)
            return true
        }
    }
}
