import Foundation

/// The fake's HTTP server with every answer decided by the caller: the fake Smartcar playing a recorded
/// upstream (the transcript harness serves each recorded interaction from here). The faults the fake
/// knows (a stall, a dropped connection, a delay) are replies too; a 401 with a Basic challenge, an HTML
/// 502 or a 429 with `Retry-After` are plain responses with those headers and bodies.
package final class ScriptedServer: Sendable {
    /// What to do with one request.
    package enum Reply: Sendable {
        /// Answer after `delay` (the server adds `Content-Length` and `Connection`).
        case respond(status: Int, headers: [(name: String, value: String)], body: [UInt8], delay: Duration)
        /// Read the request and never answer, until the client hangs up or the server stops.
        case stall
        /// Close the connection without answering.
        case drop
        /// Send `head` raw, then `chunk` again and again, `pause` apart, until the client hangs up or the
        /// server stops (an endless or huge body, a slow drip, headers that never end).
        case stream(head: [UInt8], chunk: [UInt8], pause: Duration)
    }

    private let server: HTTPServer

    /// Binds 127.0.0.1 (any free port unless `port` says) and calls `handler` for every request, on the
    /// server's connection threads (one per connection): it must be thread-safe and must not block long.
    package init(port: UInt16 = 0, handler: @escaping @Sendable (RecordedRequest) -> Reply) throws(FakeServerError) {
        server = try HTTPServer(port: port) { request in
            let recorded = RecordedRequest(request, endpoint: Endpoint(path: request.path), requestID: "")
            switch handler(recorded) {
            case .respond(let status, let headers, let body, let delay):
                return .respond(HTTPServerResponse(status: status, headers: headers, body: body), delay: delay)
            case .stall: return .stall
            case .drop: return .drop
            case .stream(let head, let chunk, let pause): return .stream(head: head, chunk: chunk, pause: pause)
            }
        }
    }

    deinit { server.stop() }

    /// `http://127.0.0.1:PORT`.
    package var origin: URL { URL(string: "http://127.0.0.1:\(server.port)")! }

    /// Closes the listener and every connection (stalled and delayed requests end unanswered) and returns
    /// when the server's threads are done. Idempotent.
    package func stop() { server.stop() }
}
