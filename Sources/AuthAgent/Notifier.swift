import JSONRPC
import Synchronization
import WireFormats

/// Sends agent → client notifications, only to a client that opted in at `initialize`.
final class Notifier: Sendable {
    private let target = Mutex<(@Sendable (String, JSONValue) -> Void)?>(nil)

    /// From now on, notifications go through `notify`.
    func enable(_ notify: @escaping @Sendable (String, JSONValue) -> Void) { target.withLock { $0 = notify } }

    func send(_ event: TokenManager.Event) {
        guard let notify = target.withLock({ $0 }) else { return }
        switch event {
        case .changed(let key, let reason, let expiresAt, let origin):
            notify(
                MethodTable.Outgoing.tokenChanged.rawValue,
                [
                    "key": .string(key), "reason": .string(reason),
                    "expiresAt": expiresAt.map { .string(RFC3339.string($0)) } ?? .null, "origin": Self.origin(origin),
                ])
        case .reauthRequired(let key, let reason, let origin):
            notify(
                MethodTable.Outgoing.reauthRequired.rawValue,
                ["key": .string(key), "reason": .string(reason), "origin": Self.origin(origin)])
        }
    }

    /// `null` for this agent's own changes, else the id of the agent on the store that made it.
    private static func origin(_ origin: String?) -> JSONValue { origin.map { .string($0) } ?? .null }
}
