/// A short HTML page the loopback listener answers a browser with; every text in it is HTML-escaped.
struct LoopbackPage: Sendable, Equatable {
    var status: Int
    var title: String
    var message: String

    static let tooLarge = LoopbackPage(
        status: 431, title: "Request too large", message: "The request head is too large.")
    static let badRequest = LoopbackPage(status: 400, title: "Bad request", message: "This is not an HTTP request.")
    static let notFound = LoopbackPage(
        status: 404, title: "Not found", message: "Nothing here: this port only waits for Smartcar Connect's redirect.")

    static func connected(key: String) -> LoopbackPage {
        LoopbackPage(
            status: 200, title: "Connected",
            message: "Connected: the vehicle's access is stored under the key '\(key)'. You may close this tab.")
    }

    static func notConnected(_ reason: String) -> LoopbackPage {
        LoopbackPage(status: 400, title: "Not connected", message: "Not connected: \(reason). You may close this tab.")
    }

    /// The whole answer: status line, headers, body; the connection closes after it.
    var bytes: [UInt8] {
        let body =
            "<!doctype html><meta charset=\"utf-8\"><title>\(Self.escape(title))</title>"
            + "<p>\(Self.escape(message))</p>\n"
        let head =
            "HTTP/1.1 \(status) \(Self.reason(status))\r\nContent-Type: text/html; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
            + "Connection: close\r\n\r\n"
        return Array((head + body).utf8)
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 431: "Request Header Fields Too Large"
        default: "Status"
        }
    }
}
