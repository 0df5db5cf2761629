import AgentSupport
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the server should do with one request.
enum HTTPReply: Sendable {
    /// Send `response` after waiting `delay` (the wait ends early, without an answer, at `stop()`).
    case respond(HTTPServerResponse, delay: Duration)
    /// Never answer: keep reading (and discarding) until the client hangs up or the server stops.
    case stall
    /// Close the connection without answering.
    case drop
    /// Send `head` (raw bytes: a status line and some or all of the headers), then `chunk` again and again,
    /// `pause` apart, until the client hangs up or the server stops: an endless body, a slow drip, headers
    /// that never end.
    case stream(head: [UInt8], chunk: [UInt8], pause: Duration)
    /// Send `response` once `answer` is released; close the connection unanswered if it is abandoned.
    case held(HTTPServerResponse, HeldAnswer)
}

/// A small HTTP/1.1 server on 127.0.0.1 (of one or more network namespaces): one thread accepting per listener,
/// one thread per connection, keep-alive.
///
/// Blocking POSIX sockets on threads of its own (never the cooperative pool). `stop()` shuts every socket
/// down with `shutdown(2)`, which wakes each blocked `accept`/`recv`, and releases delayed answers.
final class HTTPServer: Sendable {
    typealias Handler = @Sendable (HTTPServerRequest) -> HTTPReply
    /// Called once per request the handler saw, when the server stops holding it: just before its answer is
    /// sent (after any delay), when it is dropped, or when its stall ends.
    typealias Finished = @Sendable (HTTPServerRequest) -> Void

    /// Sockets that are open, under one lock so `stop()` never shuts down a descriptor that was
    /// closed and reused meanwhile (each owner closes its descriptor inside this lock).
    private struct Sockets {
        var stopped = false
        var listeners: Set<Int32> = []
        var connections: Set<Int32> = []
    }

    let port: UInt16
    private let handler: Handler
    private let finished: Finished
    private let sockets = Mutex(Sockets())
    private let stopSignal = StopSignal()
    private let threads = DispatchGroup()

    init(
        port requestedPort: UInt16, handler: @escaping Handler, finished: @escaping Finished = { _ in }
    ) throws(FakeServerError) {
        let (fd, port) = try Self.openListener(port: requestedPort)
        self.port = port
        self.handler = handler
        self.finished = finished
        serve(listener: fd)
    }

    /// Listens on 127.0.0.1:`port` too, in the network namespace of the calling thread: a test that joined
    /// another namespace (a simulated host) makes the server reachable there at the same address.
    func listenInCurrentNamespace() throws(FakeServerError) {
        serve(listener: try Self.openListener(port: port).fd)
    }

    /// A listening socket on 127.0.0.1:`port` (0: any free port) and the port it got.
    private static func openListener(port requestedPort: UInt16) throws(FakeServerError) -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FakeServerError(operation: "socket", errno: errno) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = requestedPort.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            let error = FakeServerError(
                operation: bound == 0 ? "listen" : "bind 127.0.0.1:\(requestedPort)", errno: errno)
            close(fd)
            throw error
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            let error = FakeServerError(operation: "getsockname", errno: errno)
            close(fd)
            throw error
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// Accepts connections on `listener` on a thread of its own; the server owns and closes it (at once when
    /// stopped already).
    private func serve(listener: Int32) {
        let started = sockets.withLock { state in
            guard !state.stopped else { close(listener); return false }
            state.listeners.insert(listener)
            threads.enter()
            return true
        }
        guard started else { return }
        let acceptThread = Thread { [self] in acceptLoop(listener) }
        acceptThread.name = "fake-smartcar accept"
        acceptThread.start()
    }

    /// Closes every listener and connection; stalled and delayed requests end unanswered.
    /// Returns once every server thread has finished (or after 5 s). Idempotent.
    func stop() {
        sockets.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            for fd in state.listeners { shutdown(fd, Int32(SHUT_RDWR)) }
            for fd in state.connections { shutdown(fd, Int32(SHUT_RDWR)) }
        }
        stopSignal.fire()
        _ = threads.wait(timeout: .now() + 5)
    }

    private func acceptLoop(_ listener: Int32) {
        defer {
            sockets.withLock { state in
                close(listener)
                state.listeners.remove(listener)
            }
            threads.leave()
        }
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                let error = errno
                if sockets.withLock({ $0.stopped }) { return }
                if error == EINTR || error == ECONNABORTED { continue }
                // Out of descriptors or memory: back off instead of spinning.
                if stopSignal.wait(for: .milliseconds(50)) { return }
                continue
            }
            let accepted = sockets.withLock { state in
                guard !state.stopped else { close(fd); return false }
                state.connections.insert(fd)
                return true
            }
            guard accepted else { return }
            // accept4 is not exported to Swift; a child spawned in between may inherit this socket, harmless.
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var yes: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
            threads.enter()
            let connectionThread = Thread { [self] in
                serve(fd)
                sockets.withLock { state in
                    state.connections.remove(fd)
                    close(fd)
                }
                threads.leave()
            }
            connectionThread.name = "fake-smartcar connection"
            connectionThread.start()
        }
    }

    /// Reads requests from one connection and answers them in order until either side closes.
    private func serve(_ fd: Int32) {
        var parser = HTTPRequestParser()
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            do {
                while let event = try parser.next() {
                    switch event {
                    case .expectContinue:
                        guard sendAll(fd, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return }
                    case .request(let request):
                        switch handler(request) {
                        case .respond(let response, let delay):
                            let stopped = delay > .zero && stopSignal.wait(for: delay)
                            // Before the answer leaves: a client that has it never finds the request still held.
                            finished(request)
                            if stopped { return }
                            let keepAlive = request.wantsKeepAlive
                            guard sendAll(fd, response.serialized(keepAlive: keepAlive)) else { return }
                            guard keepAlive else { return lingeringClose(fd, &chunk) }
                        case .stall:
                            while receive(fd, into: &chunk) > 0 {}
                            finished(request)
                            return
                        case .drop:
                            finished(request)
                            return
                        case .stream(let head, let chunk, let pause):
                            var open = sendAll(fd, head)
                            while open, !(pause > .zero && stopSignal.wait(for: pause)) { open = sendAll(fd, chunk) }
                            finished(request)
                            return
                        case .held(let response, let answer):
                            let released = answer.waitForRelease()
                            finished(request)
                            let keepAlive = request.wantsKeepAlive
                            let sent = released && sendAll(fd, response.serialized(keepAlive: keepAlive))
                            answer.markSent()
                            guard sent else { return }
                            guard keepAlive else { return lingeringClose(fd, &chunk) }
                        }
                    }
                }
            } catch {
                let response = HTTPServerResponse(
                    status: error.status, contentType: "text/plain; charset=utf-8",
                    body: "\(error.reason)\n")
                if sendAll(fd, response.serialized(keepAlive: false)) { lingeringClose(fd, &chunk) }
                return
            }
            let count = receive(fd, into: &chunk)
            guard count > 0 else { return }
            parser.append(chunk[0..<count])
        }
    }

    /// Before closing after an answer: stop sending, then read what the client still sends (up to 2 s
    /// of silence), so unread bytes do not make the close a reset that destroys the answer in flight.
    private func lingeringClose(_ fd: Int32, _ chunk: inout [UInt8]) {
        shutdown(fd, Int32(SHUT_WR))
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while receive(fd, into: &chunk) > 0 {}
    }

    /// `recv` retrying on EINTR; 0 at end of stream, -1 on error.
    private func receive(_ fd: Int32, into buffer: inout [UInt8]) -> Int {
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            return count
        }
    }

    /// Writes all of `bytes` (no SIGPIPE if the peer has gone); false if the connection failed.
    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            FileDescriptor.writeAll(buffer) { pointer, count in send(fd, pointer, count, Int32(MSG_NOSIGNAL)) }
        }
    }
}
