import Dispatch
import Synchronization

/// Where a `blockingAwait` task leaves its outcome for the waiting thread.
private final class Outcome<T: Sendable>: Sendable {
    let value = Mutex<Result<T, any Error>?>(nil)
}

/// Runs async work (the token store's API) from the bench's synchronous main thread, which is not a thread
/// of the cooperative pool, so waiting here blocks nothing the work needs.
func blockingAwait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Outcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do {
            let value = try await body()
            outcome.value.withLock { $0 = .success(value) }
        } catch {
            outcome.value.withLock { $0 = .failure(error) }
        }
        done.signal()
    }
    done.wait()
    return try outcome.value.withLock { $0! }.get()
}
