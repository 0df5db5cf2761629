import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Names this process as the holder of a refresh lease in the shared store (`host/pid/random`), and tells
/// whether another holder's process is gone, so a lease left by a killed agent is taken over at once rather
/// than blocking its key until the lease expires.
package enum LeaseOwner {
    package static let current: String = "\(hostName)/\(getpid())/\(UUID().uuidString.prefix(8))"

    private static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "unknown-host" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// True only when `owner` ran on this host and no process with its pid exists any more. (A reused pid
    /// reads as alive: the lease then simply expires on time.)
    static func isGone(_ owner: String) -> Bool {
        let parts = owner.split(separator: "/")
        guard parts.count == 3, parts[0] == hostName, let pid = pid_t(parts[1]), pid > 0 else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }
}
