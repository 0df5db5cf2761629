import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a browser does with a Connect URL on the fake: one GET, and the `Location` it is redirected to.
enum FakeBrowser {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func redirect(for urlString: String) throws -> String {
        guard let url = URL(string: urlString), let host = url.host, let port = url.port else {
            throw Failure(description: "bad URL \(urlString)")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw Failure(description: "connect failed") }
        let target = url.path + (url.query.map { "?" + $0 } ?? "")
        let request = Array("GET \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        for line in text.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("location:") {
            return line.dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
        }
        throw Failure(description: "no redirect in: \(text.prefix(300))")
    }
}
