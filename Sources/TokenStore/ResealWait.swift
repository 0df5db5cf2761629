import AgentSupport
import Foundation

/// Sealing a store's rows anew (an upgrade, a rotation) waits until no refresh holds a lease on them: an agent
/// still running with the old secret that has a refresh in flight could not store its rotated tokens once the rows
/// are re-sealed under the new key, and they would be lost. New leases cannot be taken while the re-sealing
/// transaction holds the store's write lock, and after it an old agent's lease fails, because the re-sealed rows
/// do not open with its key.
struct ResealWait {
    let place: String
    let logger: Logger
    private let deadline = ContinuousClock.now + .seconds(120)
    private var announced = false

    init(place: String, logger: Logger) {
        self.place = place
        self.logger = logger
    }

    /// Sleeps until `until` or 200 ms, whichever comes first; past two minutes of waiting, throws `.busy`.
    mutating func pause(leases: Int, until: Date) throws(StoreError) {
        guard ContinuousClock.now < deadline else {
            throw StoreError(
                .busy,
                "token store \(place): refreshes kept holding leases for 2 minutes, so its rows could not be sealed anew; stop the agents still running with the old secret, then start this one again"
            )
        }
        if !announced {
            announced = true
            logger.notice(
                "token store \(place): waiting for \(leases) refresh\(leases == 1 ? "" : "es") in flight to finish before sealing its rows anew"
            )
        }
        let seconds = min(max(until.timeIntervalSinceNow, 0.01), 0.2)
        usleep(useconds_t(seconds * 1_000_000))
    }
}
