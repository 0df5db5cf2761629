#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The least two durable commits cost on a disk: two 4 KiB writes to a file of the bench's folder, each fsynced.
/// Sampled between the stores' samples, since fsync time on these machines varies tenfold from second to second.
final class FsyncFloor: Sendable {
    private let fd: Int32
    private let page = [UInt8](repeating: 0x5A, count: 4096)

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw Clients.Failure(description: "cannot create \(path)") }
    }

    deinit { close(fd) }

    func twoCommits() {
        for _ in 0..<2 {
            _ = page.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            fsync(fd)
        }
    }
}
