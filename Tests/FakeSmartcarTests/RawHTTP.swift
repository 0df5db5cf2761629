import Foundation
import Synchronization
import WireFormats

@testable import FakeSmartcar

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs blocking socket work on a thread of its own, never on the cooperative pool.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// One parsed HTTP response.
struct RawResponse: Sendable {
    var status: Int
    /// Names lower-cased.
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    func object() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw TestFailure("body is not a JSON object: \(text)")
        }
        return object
    }

    /// A string field of the JSON body.
    func string(_ key: String) throws -> String? { try object()[key] as? String }
}

/// A blocking HTTP/1.1 client on a raw socket: sees exactly what the server sends (including a 401 with
/// `WWW-Authenticate`, which hangs URLSession on Linux) and whether it keeps or closes the connection.
final class RawConnection {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        // No close here: every stored property is set, so deinit runs (and closes) even when init throws.
        guard connected == 0 else { throw TestFailure("connect failed: errno \(errno)") }
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { throw TestFailure("send failed: errno \(errno)") }
            offset += sent
        }
    }

    /// The next final (non-1xx) response; nil if the server closed the connection before sending a byte.
    func readResponse() throws -> RawResponse? {
        while true {
            guard let response = try readOne() else { return nil }
            if response.status >= 200 { return response }
        }
    }

    /// The next response, interim ones included.
    func readOne() throws -> RawResponse? {
        var headEnd: Int?
        while true {
            headEnd = find([13, 10, 13, 10])
            if headEnd != nil { break }
            guard try fill() else {
                if buffer.isEmpty { return nil }
                throw TestFailure("connection closed inside a response head")
            }
        }
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw TestFailure("bad status line \(head)")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        let length = status < 200 ? 0 : Int(headers["content-length"] ?? "0") ?? 0
        while buffer.count < length {
            guard try fill() else { throw TestFailure("connection closed inside a body") }
        }
        let body = Array(buffer[..<length])
        buffer.removeFirst(length)
        return RawResponse(status: status, headers: headers, body: body)
    }

    /// True once the server has closed its side (reads end of stream with nothing left unread).
    func isClosedByServer() throws -> Bool {
        try !fill() && buffer.isEmpty
    }

    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 {
            if errno == ECONNRESET { return false }
            throw TestFailure("recv failed or timed out: errno \(errno)")
        }
        buffer.append(contentsOf: chunk[0..<count])
        return count > 0
    }

    private func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        return (0...(buffer.count - needle.count)).first { buffer[$0..<$0 + needle.count].elementsEqual(needle) }
    }
}

/// The text of one request with `Host` and `Content-Length`.
func requestText(_ method: String, _ target: String, headers: [(String, String)] = [], body: String = "") -> String {
    var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    if !body.isEmpty || method == "POST" { text += "Content-Length: \(body.utf8.count)\r\n" }
    return text + "\r\n" + body
}

/// One request on a fresh connection.
func http(
    _ fake: FakeSmartcar, _ method: String, _ target: String, headers: [(String, String)] = [],
    body: String = ""
) async throws -> RawResponse {
    let port = fake.port
    return try await blocking {
        let connection = try RawConnection(port: port)
        try connection.send(requestText(method, target, headers: headers, body: body))
        guard let response = try connection.readResponse() else { throw TestFailure("closed without an answer") }
        return response
    }
}

let formType = ("Content-Type", "application/x-www-form-urlencoded")

func basic(_ id: String, _ secret: String) -> (String, String) {
    ("Authorization", "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString())
}

/// `POST /oauth/token` with the fake's own credentials unless `auth` says otherwise.
func tokenRequest(
    _ fake: FakeSmartcar, _ form: [(String, String)], auth: (String, String)? = nil,
    target: String = "/oauth/token"
) async throws -> RawResponse {
    try await http(
        fake, "POST", target,
        headers: [auth ?? basic(fake.options.clientID, fake.options.clientSecret), formType],
        body: FormCoding.encode(form))
}

/// A fake that is stopped when `body` ends, whatever happens.
func withFake<T>(_ options: FakeSmartcar.Options = .init(), _ body: (FakeSmartcar) async throws -> T) async throws -> T
{
    let fake = try FakeSmartcar(options: options)
    defer { fake.stop() }
    return try await body(fake)
}

/// A clock tests move by hand.
final class TestClock: Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_700_000_000))
    func now() -> Date { current.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0 += seconds } }
}
