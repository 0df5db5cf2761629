import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `browse` step's browser: one `GET` of an `http://127.0.0.1:PORT/…` or `http://localhost:PORT/…` URL over a
/// blocking socket (the replay runs on a thread of its own), read until the server closes.
enum BrowserGet {
    struct Answer {
        var status: Int
        var body: String
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    static func fetch(_ text: String, until deadline: DispatchTime) throws -> Answer {
        guard let url = URL(string: text), url.scheme == "http", let port = url.port,
            ["127.0.0.1", "localhost"].contains(url.host ?? "")
        else { throw Failure(description: "browse takes an http URL on 127.0.0.1 or localhost with a port") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        defer { close(fd) }
        let left = max(
            1, Int((Double(deadline.uptimeNanoseconds) - Double(DispatchTime.now().uptimeNanoseconds)) / 1e9))
        var timeout = timeval(tv_sec: left, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw Failure(description: "connect failed: \(String(cString: strerror(errno)))") }
        let target = url.path.isEmpty ? "/" : url.path
        let query = URLComponents(string: text)?.percentEncodedQuery.map { "?" + $0 } ?? ""
        let request = Array(
            "GET \(target)\(query) HTTP/1.1\r\nHost: \(url.host!):\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
        else {
            throw Failure(description: "the request could not be sent")
        }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw Failure(description: "no answer in time") }
            if count == 0 { break }
            response += chunk[..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let headEnd = text.range(of: "\r\n\r\n"),
            let status = Int(text.prefix(12).dropFirst("HTTP/1.1 ".count).prefix(3))
        else { throw Failure(description: "not an HTTP answer: \(text.prefix(200))") }
        return Answer(status: status, body: String(text[headEnd.upperBound...]))
    }
}
