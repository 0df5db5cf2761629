import Foundation
import Synchronization

/// The real transport: the operating system's libcurl, every request on `CurlMultiThread`'s one thread.
///
/// What each call guarantees (see `CurlTransfer` for the libcurl options behind each):
/// - it returns or throws within `timeout`, whatever the server does (stall, drip, endless body): `.timedOut`;
/// - a body over `maximumBodyBytes`, declared or streamed, fails it as `.oversizedAnswer` as soon as it passes
///   the cap, without buffering more;
/// - redirects are not followed: a token endpoint that redirects would have the credentials sent on;
/// - every request gets a new connection, closed after it: libcurl silently resends a request only when a
///   reused connection dies, which for a code exchange or a refresh would spend a single-use grant twice; a
///   broken connection is an immediate `.connectionLost` that the caller can judge;
/// - only http and https; no signals (`CURLOPT_NOSIGNAL`); cancelling the calling task ends the transfer at
///   once and throws `CancellationError`.
///
/// libcurl honours the `http_proxy`, `https_proxy` and `no_proxy` environment variables (lowercase;
/// `HTTPS_PROXY` too, never `HTTP_PROXY`), and does not exempt loopback by itself.
package struct CurlTransport: HTTPTransport {
    /// The process-wide instance; `SmartcarClient` uses it unless told otherwise (all share one thread).
    package static let shared = CurlTransport()

    /// The largest answer body taken (1 MiB; a token answer is well under 4 KiB).
    package static let maximumBodyBytes = 1 << 20

    package init() {}

    package func send(_ request: HTTPRequest, timeout: Duration) async throws -> HTTPResponse {
        try Task.checkCancellation()
        guard timeout > .zero else { throw TransportError(.timedOut, detail: "no time left") }
        guard let scheme = request.url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw TransportError(.cannotConnect, detail: "not an http or https URL")
        }
        // First, so that libcurl's global set-up has run (once) before any handle is made.
        let thread = CurlMultiThread.shared
        let submitted = Mutex<CurlTransfer?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                guard
                    let transfer = CurlTransfer(
                        request, timeout: timeout, bodyLimit: Self.maximumBodyBytes, continuation: continuation)
                else {
                    continuation.resume(throwing: TransportError(.cannotConnect, detail: "libcurl refused the request"))
                    return
                }
                let cancelledAlready = submitted.withLock { submitted in
                    submitted = transfer
                    return Task.isCancelled
                }
                if cancelledAlready { _ = transfer.markCancelled() }
                thread.submit(transfer)
            }
        } onCancel: {
            guard let transfer = submitted.withLock({ $0 }), transfer.markCancelled() else { return }
            thread.cancel(transfer)
        }
    }
}
