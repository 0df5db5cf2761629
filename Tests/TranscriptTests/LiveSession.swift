#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WireFormats

/// A client talking to a real agent one line at a time, as the README's sandbox walkthrough does.
/// Blocking: use it from `onThread`.
final class LiveSession {
    struct Failure: Error, CustomStringConvertible { let description: String }

    private let process = Process()
    private let input: FileHandle
    private let output: FileHandle
    private var buffer: [UInt8] = []
    /// Every reply, for collecting what the session showed.
    private(set) var replies: [JSONValue] = []

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: Paths.agent)
        process.arguments = arguments
        process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "no_proxy": "127.0.0.1,localhost"]
        let stdinPipe = Pipe(), stdoutPipe = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        input = stdinPipe.fileHandleForWriting
        output = stdoutPipe.fileHandleForReading
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    /// Sends one request line and returns the response with its id (notifications before it are kept in
    /// `replies` too). One request at a time, so the session, and its recording, has one order.
    func call(_ request: JSONValue) throws -> JSONValue {
        input.write(Data((request.compactText + "\n").utf8))
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeFirst(newline + 1)
                let reply = try JSONParser.parse(bytes: line)
                replies.append(reply)
                if reply["id"] == request["id"] && reply["method"] == nil { return reply }
                continue
            }
            let chunk = output.availableData
            guard !chunk.isEmpty else { throw Failure(description: "the agent closed its output") }
            buffer += chunk
        }
    }

    /// Sends a message without waiting for anything.
    func send(_ message: JSONValue) {
        input.write(Data((message.compactText + "\n").utf8))
    }

    /// Closes the input and waits for the agent to exit; returns its status.
    func finish() -> Int32 {
        try? input.close()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// What a browser does with a Connect URL on the fake: one GET, and the `Location` it is redirected to.
enum Browser {
    static func redirect(for urlString: String) throws -> String {
        guard let url = URL(string: urlString) else { throw LiveSession.Failure(description: "bad URL \(urlString)") }
        let text = try exchange(url, "GET \(url.path)?\(url.query ?? "") HTTP/1.1\r\nHost: \(url.host ?? ""):\(url.port ?? 80)\r\nConnection: close\r\n\r\n")
        for line in text.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("location:") {
            return line.dropFirst("location:".count).trimmingCharacters(in: .whitespaces)
        }
        throw LiveSession.Failure(description: "no redirect in: \(text.prefix(300))")
    }

    /// GETs a URL (the fake's control API) and returns the answer's text.
    static func get(_ url: URL) throws -> String {
        try exchange(url, "GET \(url.path) HTTP/1.1\r\nHost: \(url.host ?? ""):\(url.port ?? 80)\r\nConnection: close\r\n\r\n")
    }

    /// POSTs a JSON body (to the fake's control API) and returns the answer's text.
    @discardableResult
    static func post(_ url: URL, body: String) throws -> String {
        try exchange(url, "POST \(url.path) HTTP/1.1\r\nHost: \(url.host ?? ""):\(url.port ?? 80)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
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
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
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
