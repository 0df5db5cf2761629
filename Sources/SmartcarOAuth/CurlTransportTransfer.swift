import CCurl
import Foundation
import Synchronization

/// One request as a libcurl easy handle: its options, the answer as it arrives, and the continuation that
/// hands the outcome back to the caller.
///
/// `@unchecked Sendable`: the handle, the header list and the answer buffers are touched only by the
/// `CurlMultiThread` thread once `CurlMultiThread.submit` has it (the caller builds the handle before, and
/// never touches it after); the only state the caller's side touches later, `cancelled`, is a `Mutex`.
final class CurlTransfer: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private let headerList: UnsafeMutablePointer<curl_slist>?
    private let bodyLimit: Int
    private let continuation: CheckedContinuation<HTTPResponse, any Error>
    private let cancelled = Mutex(false)

    /// The current answer's header fields, names lower-cased (an interim 1xx answer's are dropped).
    private var headers: [String: String] = [:]
    private var headerBytes = 0
    /// Whether the blank line that ends the final answer's head arrived: libcurl reports a connection closed
    /// inside the head as a success.
    private var headComplete = false
    private var interim = false
    private var body = Data()
    /// Set when a callback refused the answer for its size, so that libcurl's write error reads as that.
    private var oversized = false

    /// The most header bytes taken: a token answer's head is well under 2 KiB.
    static let maximumHeaderBytes = 64 << 10

    /// Builds the easy handle; nil when libcurl refuses (out of memory, or an option this libcurl lacks).
    init?(
        _ request: HTTPRequest, timeout: Duration, bodyLimit: Int,
        continuation: CheckedContinuation<HTTPResponse, any Error>
    ) {
        guard let handle = curl_easy_init() else { return nil }
        self.handle = handle
        self.bodyLimit = bodyLimit
        self.continuation = continuation
        var list: UnsafeMutablePointer<curl_slist>?
        // "Name;" is libcurl's spelling of an empty value ("Name:" would remove the header). "Expect:" keeps
        // libcurl from waiting for a 100 Continue before a larger body; "Connection: close" tells the server
        // that the connection is not kept (see CURLOPT_FORBID_REUSE).
        let lines = request.headers.map { $0.value.isEmpty ? "\($0.key);" : "\($0.key): \($0.value)" }
        for line in lines + ["Expect:", "Connection: close"] {
            list = curl_slist_append(list, line)
        }
        headerList = list
        guard configure(request, timeout: timeout) else { return nil }  // deinit frees the handle and the list
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
    }

    private func configure(_ request: HTTPRequest, timeout: Duration) -> Bool {
        let (seconds, attoseconds) = (min(timeout.components.seconds, 1_000_000_000), timeout.components.attoseconds)
        let milliseconds = max(1, Int(seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000))
        let context = Unmanaged.passUnretained(self).toOpaque()
        var codes = [
            ccurl_setopt_string(handle, CURLOPT_URL, request.url.absoluteString),
            ccurl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"),
            ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0),
            ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1),
            // The whole call, connection to last byte: holds against a stall, a drip and an endless body.
            ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds),
            // A new connection for every request, closed after it: libcurl only resends a request when a
            // reused connection dies, which would spend a single-use grant twice.
            ccurl_setopt_long(handle, CURLOPT_FRESH_CONNECT, 1),
            ccurl_setopt_long(handle, CURLOPT_FORBID_REUSE, 1),
            // One request per connection: HTTP/2 would bring nothing but another parser to trust.
            ccurl_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)),
            ccurl_setopt_offset(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(bodyLimit)),
            ccurl_setopt_list(handle, CURLOPT_HTTPHEADER, headerList),
            ccurl_setopt_write_function(handle, CURLOPT_WRITEFUNCTION, curlTransferReceiveBody),
            ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context),
            ccurl_setopt_write_function(handle, CURLOPT_HEADERFUNCTION, curlTransferReceiveHeader),
            ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context),
        ]
        switch request.method {
        case "GET" where request.body == nil: codes.append(ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1))
        case "HEAD" where request.body == nil: codes.append(ccurl_setopt_long(handle, CURLOPT_NOBODY, 1))
        case let method:
            if method != "POST" { codes.append(ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)) }
            // A POST without a body still sends `Content-Length: 0`. COPYPOSTFIELDS copies the bytes, as many
            // as POSTFIELDSIZE says.
            if let body = request.body ?? (method == "POST" ? Data() : nil) {
                codes.append(ccurl_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
                codes.append(
                    body.isEmpty
                        ? ccurl_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, "")
                        : body.withUnsafeBytes {
                            ccurl_setopt_pointer(
                                handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress))
                        })
            }
        }
        return codes.allSatisfy { $0 == CURLE_OK }
    }

    // MARK: - The caller's side

    /// Marks the call cancelled; true the first time.
    func markCancelled() -> Bool {
        cancelled.withLock { cancelled in
            defer { cancelled = true }
            return !cancelled
        }
    }

    var isCancelled: Bool { cancelled.withLock { $0 } }

    // MARK: - The multi thread's side

    /// Resumes the caller; called exactly once, by the multi thread, after the handle left the multi handle.
    func finish(_ outcome: Result<HTTPResponse, any Error>) {
        body = Data()
        continuation.resume(with: outcome)
    }

    /// What libcurl's verdict on the finished transfer means for the caller.
    func outcome(_ code: CURLcode) -> Result<HTTPResponse, any Error> {
        if oversized || code == CURLE_FILESIZE_EXCEEDED {
            return .failure(TransportError(.oversizedAnswer, detail: "an answer body over \(bodyLimit) bytes"))
        }
        guard code == CURLE_OK else { return .failure(TransportError(code)) }
        var status = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        guard status >= 200, headComplete else {
            return .failure(TransportError(.connectionLost, detail: "the answer's head broke off"))
        }
        return .success(HTTPResponse(status: status, headers: headers, body: body))
    }

    fileprivate func receiveHeader(_ bytes: UnsafeRawBufferPointer) -> Bool {
        headerBytes += bytes.count
        guard headerBytes <= Self.maximumHeaderBytes else {
            oversized = true
            return false
        }
        let line = String(decoding: bytes, as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            // The status line of an answer, interim (1xx) or final.
            headers = [:]
            interim = line.split(separator: " ").dropFirst().first?.hasPrefix("1") ?? false
        } else if line == "\r\n" || line == "\n" {
            headComplete = !interim
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            if headers[name] == nil { headers[name] = value }
        }
        return true
    }

    fileprivate func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard body.count + bytes.count <= bodyLimit else {
            oversized = true
            return false
        }
        body.append(contentsOf: bytes)
        return true
    }
}

/// libcurl's write callback: refusing a piece (a return other than its size) ends the transfer.
private func curlTransferReceiveBody(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    deliver(data, size * count, context) { $0.receiveBody($1) }
}

/// libcurl's header callback: one whole header line (status line and final blank line included) at a time.
private func curlTransferReceiveHeader(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    deliver(data, size * count, context) { $0.receiveHeader($1) }
}

/// Hands a callback's bytes to the transfer its context points to; what libcurl expects back.
private func deliver(
    _ data: UnsafeMutablePointer<CChar>?, _ length: Int, _ context: UnsafeMutableRawPointer?,
    to receive: (CurlTransfer, UnsafeRawBufferPointer) -> Bool
) -> Int {
    guard let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    return receive(transfer, UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
}
