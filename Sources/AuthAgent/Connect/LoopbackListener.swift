import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The port `connect` listens on for Connect's redirect: 127.0.0.1 only, one thread of its own that waits in
/// `poll(2)` on the listening socket and every connection (non-blocking), so no read or accept ever blocks a
/// thread of the cooperative pool.
///
/// Built for a browser and for hostile neighbours alike: at most `maxConnections` at once (a new one evicts
/// the oldest still sending its head), a head of at most `maxHeadBytes` that must be complete within
/// `headSeconds` of the accept, and anything that is not a request line gets a 400 and a close.
final class LoopbackListener: Sendable {
    /// What `route` decides for one request head.
    enum Route: Sendable {
        case page(LoopbackPage)
        /// Keep the connection open: `answerHeld` sends its page (the redirect, answered after the exchange).
        case hold
    }

    struct BindError: Error {
        var port: UInt16
        var reason: String
    }

    static let maxConnections = 16
    static let maxHeadBytes = 8 << 10
    static let headSeconds = 10.0
    /// After an answer: how long unread bytes are drained, so the close does not reset the answer in flight.
    static let lingerSeconds = 1.0

    /// The port bound (the one asked for, or the one the system chose for port 0).
    let port: UInt16
    private let listenFD: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let control = Mutex(Control())

    private struct Control {
        var heldPage: LoopbackPage?
        var started = false
        var stopping = false
        var closed: CheckedContinuation<Void, Never>?
        var hasClosed = false
    }

    /// Binds 127.0.0.1:`port` and listens (nothing is accepted before `start`).
    init(port: UInt16) throws(BindError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BindError(port: port, reason: String(cString: strerror(errno))) }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw BindError(port: port, reason: reason)
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw BindError(port: port, reason: reason)
        }
        for descriptor in [fd, pipeFDs[0], pipeFDs[1]] { Self.makeNonBlocking(descriptor) }
        self.port = UInt16(bigEndian: actual.sin_port)
        listenFD = fd
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
    }

    /// Starts accepting; `route` runs on the listener's thread for each complete request head.
    func start(route: @escaping @Sendable (LoopbackRequestHead) -> Route) {
        control.withLock { $0.started = true }
        let thread = Thread { [self] in
            var loop = LoopbackConnections(limit: Self.maxConnections)
            run(&loop, route: route)
        }
        thread.name = "connect loopback listener"
        thread.start()
    }

    /// Sends `page` to the connections that `route` held (and to any held later).
    func answerHeld(_ page: LoopbackPage) {
        control.withLock { $0.heldPage = page }
        wake()
    }

    /// Closes the port; returns once it is closed. Answers already being sent finish within their linger time.
    func stop() async {
        let started = control.withLock { control in
            control.stopping = true
            return control.started
        }
        guard started else { return closeListeningSocket() }  // no thread: nothing else has the socket
        await withCheckedContinuation { (closed: CheckedContinuation<Void, Never>) in
            let done = control.withLock { control -> Bool in
                if control.hasClosed { return true }
                control.closed = closed
                return false
            }
            if done { closed.resume() }
            wake()
        }
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    // MARK: The listener's thread

    private func run(_ loop: inout LoopbackConnections, route: @Sendable (LoopbackRequestHead) -> Route) {
        var listening = true
        while listening || !loop.isEmpty {
            let (stopping, held) = control.withLock { ($0.stopping, $0.heldPage) }
            if let held { loop.answerHeld(held) }
            if stopping && listening {
                listening = false
                closeListeningSocket()
                loop.closeUnanswered()
            }
            var descriptors = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if listening { descriptors.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)) }
            let connections = loop.pollDescriptors()
            descriptors += connections
            let timeout = loop.millisecondsToNextDeadline(now: Self.now())
            let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
            if ready < 0 && errno != EINTR { break }  // cannot happen with valid descriptors; ends the listener
            if descriptors[0].revents != 0 { drainWakeups() }
            loop.serviceReady(descriptors.suffix(connections.count), now: Self.now(), route: route)
            if listening && descriptors[1].revents != 0 { acceptAll(&loop) }
        }
        if listening { closeListeningSocket() }
        loop.closeAll()
    }

    /// Closes the port, and lets `stop()` return.
    private func closeListeningSocket() {
        close(listenFD)
        let closed = control.withLock { control in
            control.hasClosed = true
            return control.closed.take()
        }
        closed?.resume()
    }

    /// The wake-up pipe lives as long as the listener: `wake()` may run after the thread has ended.
    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    private func acceptAll(_ loop: inout LoopbackConnections) {
        while true {
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0 else { return }
            Self.makeNonBlocking(fd)
            loop.add(fd, now: Self.now())
        }
    }

    private func drainWakeups() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while bytes.withUnsafeMutableBytes({ read(wakeRead, $0.baseAddress, $0.count) }) > 0 {}
    }

    static func makeNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
