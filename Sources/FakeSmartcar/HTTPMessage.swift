import Foundation
import WireFormats

/// One parsed HTTP/1.x request, as the server hands it to its handler.
struct HTTPServerRequest: Sendable {
    var method: String
    /// The path part of the request target, still percent-encoded.
    var path: String
    /// The raw query string (without `?`), `""` when absent.
    var rawQuery: String
    var version: String
    /// Header fields in arrival order; names lower-cased.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// The value of header `name` (lower-case); repeated fields are joined with ", ".
    func header(_ name: String) -> String? {
        let values = headers.filter { $0.name == name }.map(\.value)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// Whether the client wants the connection kept open after the answer (HTTP/1.1 default yes, 1.0 no).
    var wantsKeepAlive: Bool {
        let tokens = (header("connection") ?? "").lowercased().split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        if tokens.contains("close") { return false }
        return version == "HTTP/1.1" || tokens.contains("keep-alive")
    }
}

/// One answer; the server adds `Content-Length` and `Connection`.
struct HTTPServerResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    init(status: Int, contentType: String, body: String, headers: [(name: String, value: String)] = []) {
        self.init(status: status, headers: [("Content-Type", contentType)] + headers, body: Array(body.utf8))
    }

    /// A JSON answer the way Smartcar sends one: compact, members in the order built (including explicit
    /// `null`s, which synthesised `Codable` would drop), so the fake imitates Smartcar's bodies field for field.
    static func json(
        _ status: Int, _ body: JSONValue,
        headers: [(name: String, value: String)] = []
    ) -> HTTPServerResponse {
        HTTPServerResponse(
            status: status, contentType: "application/json; charset=utf-8", body: body.compactText,
            headers: headers)
    }

    /// The bytes on the wire, head and body in one buffer (one `send` per answer).
    func serialized(keepAlive: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(HTTPServerResponse.reasonPhrase(status))\r\n"
        for (name, value) in headers where !["content-length", "connection"].contains(name.lowercased()) {
            head += "\(name): \(value)\r\n"
        }
        head += "Content-Length: \(body.count)\r\n"
        head += "Connection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
        return Array(head.utf8) + body
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 302: "Found"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Status \(status)"
        }
    }
}
