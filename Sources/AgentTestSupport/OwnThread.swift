import Foundation

/// Runs blocking work (starting servers, running commands, waiting on a condition) on a thread of its own and
/// awaits it, so an async test never holds one of the cooperative pool's few threads while it waits: other tests
/// running at the same time keep their pool.
package func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
