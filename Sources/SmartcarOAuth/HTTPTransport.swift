import Foundation

/// The seam between `SmartcarClient` and the network: `CurlTransport` in production, recording or
/// scripted stubs in tests (and a recorder wrapping the real one later).
package protocol HTTPTransport: Sendable {
    /// Sends one request and returns whatever HTTP answer came back, whatever its status.
    /// Must return or throw within `timeout` (throwing `TransportError` `.timedOut`), throws
    /// `TransportError` for network failures and `CancellationError` when the calling task is cancelled.
    func send(_ request: HTTPRequest, timeout: Duration) async throws -> HTTPResponse
}

/// One HTTP request. `description` shows neither headers nor body: both carry credentials.
package struct HTTPRequest: Sendable, Equatable, CustomStringConvertible {
    package var method: String
    package var url: URL
    /// Header fields by name as sent (`Authorization`, `Content-Type`, ...).
    package var headers: [String: String]
    package var body: Data?

    package init(method: String, url: URL, headers: [String: String] = [:], body: Data? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// A header's value, whatever the case of its name.
    package func header(_ name: String) -> String? {
        headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    package var description: String {
        "\(method) \(url.scheme ?? "")://\(url.host ?? "")\(url.port.map { ":\($0)" } ?? "")\(url.path)"
    }
}

/// One HTTP answer, any status.
package struct HTTPResponse: Sendable, Equatable {
    package var status: Int
    /// Header fields, names lower-cased.
    package var headers: [String: String]
    package var body: Data

    package init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = Dictionary(
            headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        self.body = body
    }

    /// A header's value by name, any case.
    package func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// A network failure, classified by whether the request can have reached the server: that decides whether
/// a single-use request (code exchange, refresh) may be sent again.
package struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: String, Sendable {
        /// No connection was made (refused, no route, DNS failure): the request certainly never left.
        case cannotConnect
        /// No answer within the time allowed; the server may have received and processed the request.
        case timedOut
        /// The connection broke after the request was (perhaps) sent: reset, closed without an answer.
        case connectionLost
        /// TLS failed (certificate, handshake): not transient, and nothing was sent.
        case secureConnectionFailed
        /// The answer's body passed the transport's cap (declared or streamed): the server did answer.
        case oversizedAnswer
        /// Anything else the transport could not classify; assume the request may have been received.
        case other
    }

    package var kind: Kind
    /// A short technical reason (an error code name), never a URL with credentials, a header or a body.
    package var detail: String

    package init(_ kind: Kind, detail: String = "") {
        self.kind = kind
        self.detail = detail
    }

    /// Whether the server may have seen the request.
    package var mayHaveReachedServer: Bool {
        switch kind {
        case .cannotConnect, .secureConnectionFailed: false
        case .timedOut, .connectionLost, .oversizedAnswer, .other: true
        }
    }

    package var description: String { detail.isEmpty ? kind.rawValue : "\(kind.rawValue) (\(detail))" }
}
