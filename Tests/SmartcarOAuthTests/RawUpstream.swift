import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An upstream on a raw loopback socket that answers each request with exactly the bytes a test gives,
/// then closes the connection or holds it open: answers no HTTP server would send (cut inside the head,
/// garbage, a redirect to nowhere), to see what the transport makes of them.
final class RawUpstream: Sendable {
    /// What to do with one request, given its head (request line and header fields).
    struct Script: Sendable {
        var bytes: [UInt8]
        /// Keep the connection open after the bytes, until the client hangs up or the upstream stops.
        var hold = false
    }

    let port: UInt16
    private let listener: Int32
    private let script: @Sendable (String) -> Script
    private let state = Mutex<(open: Set<Int32>, requests: [String], stopped: Bool)>(([], [], false))
    /// Yields each request head as it arrives, so a test can wait for one without timing.
    let arrivals = AsyncStream<String>.makeStream()
    /// Yields each time a client hangs up a held connection (not when `stop` closes it).
    let hangUps = AsyncStream<Void>.makeStream()

    init(_ script: @escaping @Sendable (String) -> Script) throws {
        self.script = script
        guard let (listener, port) = boundLoopbackSocket() else { throw CocoaError(.fileReadUnknown) }
        guard listen(listener, 256) == 0 else {
            _ = Glibc.close(listener)
            throw CocoaError(.fileReadUnknown)
        }
        self.listener = listener
        self.port = port
        Thread { [self] in acceptLoop() }.start()
    }

    /// `http://127.0.0.1:PORT`.
    var origin: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Every request head received so far.
    var requests: [String] { state.withLock { $0.requests } }

    /// Stops accepting and closes every held connection.
    func stop() {
        state.withLock { state in
            // Under the lock: `serve` forgets a descriptor under it before closing it, so each one is still open.
            state.stopped = true
            for fd in state.open { _ = shutdown(fd, Int32(SHUT_RDWR)) }
            state.open = []
        }
        _ = shutdown(listener, Int32(SHUT_RDWR))
        arrivals.continuation.finish()
        hangUps.continuation.finish()
    }

    deinit { _ = Glibc.close(listener) }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            Thread { [self] in serve(fd) }.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { _ = Glibc.close(fd) }
        guard let head = readRequest(fd) else { return }
        let admitted = state.withLock { state in
            state.requests.append(head)
            if !state.stopped { state.open.insert(fd) }
            return !state.stopped
        }
        guard admitted else { return }
        arrivals.continuation.yield(head)
        let reply = script(head)
        var offset = 0
        while offset < reply.bytes.count {
            let sent = reply.bytes[offset...].withUnsafeBytes {
                send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { break }
            offset += sent
        }
        if reply.hold {
            // Until the client hangs up or `stop` shuts the socket down.
            var byte: UInt8 = 0
            while recv(fd, &byte, 1, 0) > 0 {}
            if !state.withLock({ $0.stopped }) { hangUps.continuation.yield() }
        }
        _ = state.withLock { $0.open.remove(fd) }
    }

    /// The request's head, its body read and dropped (so that closing sends FIN, not a reset).
    private func readRequest(_ fd: Int32) -> String? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let end = buffer.firstRange(of: [13, 10, 13, 10]) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                let length =
                    head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                var remaining = length - (buffer.count - end.upperBound)
                while remaining > 0 {
                    let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    guard count > 0 else { return nil }
                    remaining -= count
                }
                return head
            }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            buffer.append(contentsOf: chunk[..<count])
        }
    }
}

/// A TCP socket bound to 127.0.0.1 on a free port, not yet listening; nil (nothing left open) if that failed.
func boundLoopbackSocket() -> (fd: Int32, port: UInt16)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else {
        _ = Glibc.close(fd)
        return nil
    }
    return (fd, UInt16(bigEndian: address.sin_port))
}
