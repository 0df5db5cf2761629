import JSONRPC
import Synchronization

/// Sends agent → client notifications, only to a client that opted in at `initialize`.
final class Notifier: Sendable {
    private let target = Mutex<Connection?>(nil)

    /// From now on, notifications go to `connection`.
    func enable(on connection: Connection) { target.withLock { $0 = connection } }

    func send(_ event: TokenManager.Event) {
        guard let connection = target.withLock({ $0 }) else { return }
        switch event {
        case .changed(let key, let reason, let expiresAt):
            connection.sendNotification("tokenChanged", params: [
                "key": .string(key), "reason": .string(reason), "expiresAt": expiresAt.map { .string(RFC3339.string($0)) } ?? .null,
            ])
        case .reauthRequired(let key, let reason):
            connection.sendNotification("reauthRequired", params: ["key": .string(key), "reason": .string(reason)])
        }
    }
}
