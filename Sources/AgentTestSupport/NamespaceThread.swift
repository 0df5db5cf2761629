import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a piece of work inside another network namespace: on a thread of its own that joins the namespace
/// (`setns(2)` changes only the calling thread's) and ends with the work, so no other thread is ever moved.
/// Sockets the work makes stay in that namespace.
enum NamespaceThread {
    /// `setns` is not in Swift's Glibc module; found in the C library at run time.
    private typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
    private static let newNetworkNamespace: Int32 = 0x4000_0000  // CLONE_NEWNET

    /// Runs `work` in the network namespace at `path` (e.g. /run/netns/NAME); waits for it and rethrows.
    static func run(inNetworkNamespace path: String, _ work: @escaping @Sendable () throws -> Void) throws {
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let result = Result<Void, any Error> {
                try join(path)
                try work()
            }
            outcome.withLock { $0 = result }
            done.signal()
        }
        thread.name = "namespace \(path)"
        thread.start()
        done.wait()
        try outcome.withLock { $0 }!.get()
    }

    private static func join(_ path: String) throws {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else {
            throw SimulatedHostError("setns is missing from the C library")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SimulatedHostError("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard unsafeBitCast(symbol, to: SetNamespace.self)(fd, newNetworkNamespace) == 0 else {
            throw SimulatedHostError("setns \(path): \(String(cString: strerror(errno)))")
        }
    }
}
