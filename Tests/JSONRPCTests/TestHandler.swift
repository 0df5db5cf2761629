import Synchronization
@testable import JSONRPC

/// A door that handlers wait at until the test opens it (ignoring cancellation), counting who arrived.
final class Gate: Sendable {
    private struct State {
        var open = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var arrived = 0
        var arrivalWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    /// Counts a handler as arrived without waiting.
    func arrive() {
        let due = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.arrived += 1
            let count = state.arrived
            defer { state.arrivalWaiters.removeAll { $0.count <= count } }
            return state.arrivalWaiters.filter { $0.count <= count }.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }

    /// Arrives, then waits until the gate is open.
    func wait() async {
        arrive()
        await withCheckedContinuation { continuation in
            let passNow = state.withLock { state -> Bool in
                if !state.open { state.waiting.append(continuation) }
                return state.open
            }
            if passNow { continuation.resume() }
        }
    }

    /// Returns once `count` handlers have reached the gate.
    func arrivals(_ count: Int) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.arrived >= count { return true }
                state.arrivalWaiters.append((count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}

/// Counts the notifications a handler received.
final class NotificationLog: Sendable {
    private let methods = Mutex<[String]>([])
    func record(_ method: String) { methods.withLock { $0.append(method) } }
    var all: [String] { methods.withLock { $0 } }
}

private struct Unexpected: Error {}

/// Methods: echo (returns params), add {a, b}, park (waits at the gate, ignoring cancellation, then
/// returns "late"), sleep (parked until cancelled), fail (throws a non-protocol error), notify (sends a
/// notification, returns true); anything else is -32601.
struct TestHandler: MessageHandler {
    var gate = Gate()
    var notifications = NotificationLog()

    struct AddParams: Decodable {
        let a: Int
        let b: Int
    }

    func handleRequest(_ request: IncomingMessage, connection: Connection) async throws -> JSONValue {
        switch request.method {
        case "echo":
            return request.rawParams ?? .null
        case "add":
            let params = try request.params(AddParams.self)
            return .int(Int64(params.a + params.b))
        case "park":
            await gate.wait()
            return "late"
        case "sleep":
            gate.arrive()
            try await Task.sleep(for: .seconds(3600))
            return "overslept"
        case "fail":
            throw Unexpected()
        case "notify":
            connection.sendNotification("test/notified", params: ["n": 1])
            return true
        default:
            throw ResponseError.methodNotFound(request.method)
        }
    }

    func handleNotification(_ notification: IncomingMessage, connection: Connection) async {
        notifications.record(notification.method)
    }
}
