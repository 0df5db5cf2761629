import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a browser does with a Connect URL on the fake: a GET, and the `Location` it is redirected to; or the
/// whole visit, following the redirect to the page the application answers.
enum FakeBrowser {
    struct Failure: Error, CustomStringConvertible { let description: String }

    /// One answer: the status, and the head and body as text.
    struct Page {
        var status: Int
        var head: String
        var body: String

        var location: String? {
            head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("location:") }.map {
                $0.dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
            }
        }
    }

    static func redirect(for urlString: String) throws -> String {
        let page = try get(urlString)
        guard let location = page.location else { throw Failure(description: "no redirect in: \(page.head)") }
        return location
    }

    /// GETs `urlString`, then each `Location` it is sent to (at most 5), and returns the last answer.
    static func visit(_ urlString: String) throws -> Page {
        var page = try get(urlString)
        for _ in 0..<5 {
            guard (300..<400).contains(page.status), let location = page.location else { return page }
            page = try get(location)
        }
        return page
    }

    static func get(_ urlString: String) throws -> Page {
        guard let url = URL(string: urlString), let host = url.host, let port = url.port else {
            throw Failure(description: "bad URL \(urlString)")
        }
        let target = url.path + (url.query.map { "?" + $0 } ?? "")
        let request = "GET \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n"
        let text = String(decoding: try exchange(port: UInt16(port), Array(request.utf8)), as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let status = Int(parts[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        return Page(status: status, head: parts[0], body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// Connects to 127.0.0.1:`port`, sends `bytes`, ends its side, and reads until the server closes.
    static func exchange(port: UInt16, _ bytes: [UInt8]) throws -> [UInt8] {
        let fd = try connected(port: port)
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
        return readToEnd(fd)
    }

    /// A connection to 127.0.0.1:`port`, its reads bounded by a generous guard (a hung server fails the test
    /// instead of hanging it).
    static func connected(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        var guardTime = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guardTime, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port.bigEndian)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            throw Failure(description: "connect to port \(port) failed: \(String(cString: strerror(errno)))")
        }
        return fd
    }

    static func readToEnd(_ fd: Int32) -> [UInt8] {
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return response
    }
}

extension FakeBrowser {
    /// A socket listening on 127.0.0.1 (a port some other program holds).
    static func listening() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard fd >= 0, bound else { throw Failure(description: "could not listen") }
        return (fd, UInt16(bigEndian: address.sin_port))
    }
}
