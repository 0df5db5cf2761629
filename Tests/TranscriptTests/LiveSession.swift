import AgentTestSupport
import Foundation
import WireFormats

#if canImport(Glibc)
    import Glibc
#endif

/// A client talking to a real agent one request at a time, as the README's sandbox walkthrough does.
/// Blocking: use it from `onThread`.
final class LiveSession {
    struct Failure: Error, CustomStringConvertible { let description: String }

    private let agent: AgentProcess
    /// How many of the agent's messages are in `replies`.
    private var seen = 0
    /// Every reply, for collecting what the session showed.
    private(set) var replies: [JSONValue] = []

    init(arguments: [String]) throws {
        agent = try AgentProcess(binary: Paths.agent, arguments: arguments)
    }

    /// Sends one request line and returns the response with its id (notifications before it are kept in
    /// `replies` too). One request at a time, so the session, and its recording, has one order.
    func call(_ request: JSONValue) throws -> JSONValue {
        send(request)
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let seen = self.seen
            let new = agent.wait(until: deadline) { $0.messages.count > seen ? $0.messages[seen...] : nil }
            guard let new else {
                throw Failure(description: "no answer to \(request.compactText); stderr: \(agent.stderrTail())")
            }
            self.seen += new.count
            for reply in new {
                replies.append(reply)
                if reply["id"] == request["id"] && reply["method"] == nil { return reply }
            }
        }
    }

    /// Sends a message without waiting for anything.
    func send(_ message: JSONValue) {
        agent.sendLine(message.compactText)
    }

    /// Closes the input and waits for the agent to exit; returns its status.
    func finish() -> Int32 {
        agent.closeInput()
        return agent.waitForExit(until: .now + .seconds(60))?.status ?? -1
    }
}

/// What a browser does with a Connect URL on the fake: one GET, and the `Location` it is redirected to.
enum Browser {
    static func redirect(for urlString: String) throws -> String {
        guard let url = URL(string: urlString) else { throw LiveSession.Failure(description: "bad URL \(urlString)") }
        let text = try exchange(
            url,
            "GET \(url.path)?\(url.query ?? "") HTTP/1.1\r\nHost: \(url.host ?? ""):\(url.port ?? 80)\r\nConnection: close\r\n\r\n"
        )
        for line in text.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("location:") {
            return line.dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
        }
        throw LiveSession.Failure(description: "no redirect in: \(text.prefix(300))")
    }

    /// GETs a URL (the fake's control API) and returns the answer's text.
    static func get(_ url: URL) throws -> String {
        try exchange(
            url, "GET \(url.path) HTTP/1.1\r\nHost: \(url.host ?? ""):\(url.port ?? 80)\r\nConnection: close\r\n\r\n")
    }

    /// POSTs a JSONValue body (to the fake's control API) and returns the answer's text.
    @discardableResult
    static func post(_ url: URL, body: String) throws -> String {
        try exchange(
            url,
            "POST \(url.path) HTTP/1.1\r\nHost: \(url.host ?? ""):\(url.port ?? 80)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        )
    }

    /// Sends one raw HTTP/1.1 request to the URL's host and port and reads the whole answer.
    static func exchange(_ url: URL, _ request: String) throws -> String {
        guard let host = url.host, let port = url.port else { throw LiveSession.Failure(description: "bad URL \(url)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw LiveSession.Failure(description: "cannot connect to \(host):\(port)") }
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += chunk[0..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }
}

extension JSONValue {
    /// Every string inside the value.
    var allStrings: [String] {
        switch self {
        case .string(let text): [text]
        case .array(let items): items.flatMap(\.allStrings)
        case .object(let members): members.flatMap { $0.value.allStrings }
        default: []
        }
    }
}

/// A request line.
func request(_ id: Int, _ method: String, _ params: JSONValue = [:]) -> JSONValue {
    ["jsonrpc": "2.0", "id": .int(Int64(id)), "method": .string(method), "params": params]
}
