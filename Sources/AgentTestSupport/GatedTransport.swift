import SmartcarOAuth
import Synchronization

/// Holds every request to Smartcar until the test opens it, and says how many arrived: the test decides
/// what happens while a refresh is at Smartcar, without timing.
package final class GatedTransport: HTTPTransport {
    private struct State {
        var open = false
        var arrived = 0
        var held: [CheckedContinuation<Void, Never>] = []
        var arrivalWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let inner: any HTTPTransport
    private let state = Mutex(State())

    package init(_ inner: any HTTPTransport = CurlTransport.shared) { self.inner = inner }

    package var arrived: Int { state.withLock { $0.arrived } }

    package func send(_ request: HTTPRequest, timeout: Duration) async throws -> HTTPResponse {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (pass, ready) = state.withLock { state in
                state.arrived += 1
                let arrived = state.arrived
                let ready = state.arrivalWaiters.filter { $0.count <= arrived }.map(\.continuation)
                state.arrivalWaiters.removeAll { $0.count <= arrived }
                if !state.open { state.held.append(continuation) }
                return (state.open, ready)
            }
            for waiter in ready { waiter.resume() }
            if pass { continuation.resume() }
        }
        return try await inner.send(request, timeout: timeout)
    }

    /// Returns once `count` requests have arrived (held or not).
    package func waitForArrivals(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state in
                if state.arrived >= count { return true }
                state.arrivalWaiters.append((count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Lets every held request and every later one through.
    package func open() {
        let held = state.withLock { state in
            state.open = true
            defer { state.held = [] }
            return state.held
        }
        for continuation in held { continuation.resume() }
    }
}
