import Foundation
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The real transport: one long-lived ephemeral `URLSession` (never invalidated) for the whole process.
///
/// Two Linux workarounds (see SWIFT-LINUX-NOTES.md): a 401 carrying `WWW-Authenticate: Basic` never
/// completes on Swift 6.3.0/6.3.1 unless a session-level delegate cancels the auth challenge, so the
/// delegate does that and keeps `challenge.failureResponse` (the body is lost; the answer comes back as a
/// bodiless 401 with `bodyLost`); and every call has its own deadline that answers `.timedOut` and
/// cancels the task, whether or not libcurl ever reports back. Redirects are not followed: a token
/// endpoint that redirects would otherwise have the credentials sent on to wherever it points.
///
/// Every request goes out with `Connection: close`. When a reused keep-alive connection dies before the
/// answer, libcurl silently sends the request again on a new one: for a GET that is a hidden retry, for a
/// POST on 6.3 it hangs until the deadline (the body cannot be rewound), and for a code exchange or a
/// refresh a silent resend would spend a single-use grant twice. A fresh connection per request makes a
/// broken connection an immediate `.connectionLost` that the caller can judge; a GET is no exception, as
/// a POST reuses whatever connection a GET left open.
package final class URLSessionTransport: HTTPTransport {
    /// The process-wide instance; `SmartcarClient` uses it unless told otherwise.
    package static let shared = URLSessionTransport()

    private let delegate = SessionDelegate()
    /// Made on the first request: setting up libcurl and OpenSSL is a good part of the agent's start-up,
    /// and a `getToken` answered from the store needs none of it.
    private let lazySession = Mutex<URLSession?>(nil)

    private let maxConnectionsPerHost: Int

    /// - Parameter maxConnectionsPerHost: how many requests may be open to one Smartcar host at once.
    ///   URLSession's default is 6 and libcurl honours it: a refresh storm bounded at 32 then runs at 6.
    package init(maxConnectionsPerHost: Int = 64) {
        self.maxConnectionsPerHost = max(1, maxConnectionsPerHost)
    }

    private var session: URLSession {
        lazySession.withLock { session in
            if let session { return session }
            let configuration = URLSessionConfiguration.ephemeral
            configuration.httpMaximumConnectionsPerHost = maxConnectionsPerHost
            configuration.httpCookieStorage = nil
            configuration.httpShouldSetCookies = false
            configuration.urlCache = nil
            configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
            let made = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
            session = made
            return made
        }
    }

    /// The largest answer body taken (1 MiB; a token answer is well under 4 KiB). A larger one, declared
    /// or streamed (a chunked body that never ends), fails the call as `.oversizedAnswer` as soon as it
    /// passes the cap, without buffering more.
    package static let maximumBodyBytes = 1 << 20

    package func send(_ request: HTTPRequest, timeout: Duration) async throws -> HTTPResponse {
        var urlRequest = URLRequest(url: request.url)
        urlRequest.httpMethod = request.method
        for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
        urlRequest.setValue("close", forHTTPHeaderField: "Connection")
        urlRequest.httpBody = request.body
        // Our own deadline below is the real one. URLSession's is only a backstop, in whole seconds and a
        // second later: corelibs turns a sub-second interval into an immediate -1001 timeout.
        urlRequest.timeoutInterval = timeout.timeInterval.rounded(.up) + 1

        let call = PendingCall(bodyLimit: Self.maximumBodyBytes)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                // No completion handler: the body comes through the delegate, piece by piece, so the cap
                // holds before anything more is buffered.
                let task = session.dataTask(with: urlRequest)
                let timer = Task {
                    do { try await Task.sleep(for: timeout) } catch { return }
                    call.finish(.failure(TransportError(.timedOut, detail: "no answer within \(timeout)")))
                }
                delegate.register(call, for: task)
                if call.start(continuation, task: task, timer: timer) {
                    task.resume()
                } else {
                    delegate.forget(task)
                }
            }
        } onCancel: {
            call.finish(.failure(CancellationError()))
        }
    }

    fileprivate static func outcome(
        body: Data, response: URLResponse?, error: (any Error)?, challenged: HTTPResponse?
    ) -> Result<HTTPResponse, any Error> {
        if let error {
            if let challenged, (error as? URLError)?.code == .cancelled { return .success(challenged) }
            return .failure(classify(error))
        }
        guard let http = response as? HTTPURLResponse else {
            return .failure(TransportError(.connectionLost, detail: "no HTTP response"))
        }
        return .success(HTTPResponse(status: http.statusCode, headers: headers(of: http), body: body))
    }

    static func headers(of response: HTTPURLResponse) -> [String: String] {
        var headers: [String: String] = [:]
        for (name, value) in response.allHeaderFields {
            headers[String(describing: name).lowercased()] = String(describing: value)
        }
        return headers
    }

    private static func classify(_ error: any Error) -> TransportError {
        guard let urlError = error as? URLError else {
            return TransportError(.other, detail: String(describing: type(of: error)))
        }
        let detail = "URLError \(urlError.code.rawValue)"
        switch urlError.code {
        case .cannotConnectToHost, .cannotFindHost, .dnsLookupFailed, .notConnectedToInternet:
            return TransportError(.cannotConnect, detail: detail)
        case .timedOut:
            return TransportError(.timedOut, detail: detail)
        case .networkConnectionLost, .badServerResponse, .zeroByteResource, .cannotParseResponse:
            return TransportError(.connectionLost, detail: detail)
        case .secureConnectionFailed, .serverCertificateHasBadDate, .serverCertificateUntrusted,
            .serverCertificateHasUnknownRoot, .serverCertificateNotYetValid, .clientCertificateRejected,
            .clientCertificateRequired:
            return TransportError(.secureConnectionFailed, detail: detail)
        default:
            return TransportError(.other, detail: detail)
        }
    }
}

/// One request in flight: whichever of completion, deadline, body cap or cancellation comes first resumes
/// the continuation, exactly once; the others find it finished and do nothing.
private final class PendingCall: Sendable {
    private struct State {
        var continuation: CheckedContinuation<HTTPResponse, any Error>?
        var task: URLSessionDataTask?
        var timer: Task<Void, Never>?
        var finished = false
        /// The outcome when it came before `start` (cancelled, or a deadline of zero).
        var early: Result<HTTPResponse, any Error>?
        var response: URLResponse?
        var body = Data()
    }

    private let state = Mutex(State())
    private let bodyLimit: Int

    init(bodyLimit: Int) { self.bodyLimit = bodyLimit }

    /// Registers the parts; false (and the continuation resumed with the outcome) when the call finished
    /// before the request started.
    func start(
        _ continuation: CheckedContinuation<HTTPResponse, any Error>, task: URLSessionDataTask,
        timer: Task<Void, Never>
    ) -> Bool {
        let early = state.withLock { state -> Result<HTTPResponse, any Error>? in
            if state.finished { return state.early ?? .failure(CancellationError()) }
            state.continuation = continuation
            state.task = task
            state.timer = timer
            return nil
        }
        guard let early else { return true }
        timer.cancel()
        continuation.resume(with: early)
        return false
    }

    /// The answer's head; false (and the call failed) when it declares a body over the cap.
    func receive(_ response: URLResponse) -> Bool {
        if response.expectedContentLength > Int64(bodyLimit) {
            finish(.failure(Self.oversized(bodyLimit)))
            return false
        }
        state.withLock { $0.response = response }
        return true
    }

    /// A piece of the body, kept while the body stays within the cap; past it, the call fails.
    func receive(_ data: Data) {
        let over = state.withLock { state -> Bool in
            guard !state.finished else { return false }
            guard state.body.count + data.count <= bodyLimit else { return true }
            state.body.append(data)
            return false
        }
        if over { finish(.failure(Self.oversized(bodyLimit))) }
    }

    /// The task completed (with or without an error).
    func complete(error: (any Error)?, challenged: HTTPResponse?) {
        let (body, response) = state.withLock { state in
            defer { state.body = Data() }
            return (state.body, state.response)
        }
        finish(URLSessionTransport.outcome(body: body, response: response, error: error, challenged: challenged))
    }

    func finish(_ result: Result<HTTPResponse, any Error>) {
        let parts = state.withLock {
            state -> (CheckedContinuation<HTTPResponse, any Error>?, URLSessionDataTask?, Task<Void, Never>?)? in
            if state.finished { return nil }
            state.finished = true
            state.body = Data()
            if state.continuation == nil { state.early = result }
            defer { state.continuation = nil; state.timer = nil }
            return (state.continuation, state.task, state.timer)
        }
        guard let (continuation, task, timer) = parts else { return }
        timer?.cancel()
        if case .failure = result { task?.cancel() }
        continuation?.resume(with: result)
    }

    private static func oversized(_ limit: Int) -> TransportError {
        TransportError(.oversizedAnswer, detail: "an answer body over \(limit) bytes")
    }
}

/// The session-level delegate: hands each task's answer to its `PendingCall` piece by piece, cancels HTTP
/// auth challenges (keeping the 401 they came with) and refuses redirects.
///
/// `@unchecked Sendable`: it must subclass `NSObject`, which is not `Sendable`; its only stored state is
/// two `Mutex`es, so concurrent calls from URLSession's delegate queue and from callers are safe.
private final class SessionDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let challenged = Mutex<[Int: HTTPResponse]>([:])
    private let calls = Mutex<[Int: PendingCall]>([:])

    func register(_ call: PendingCall, for task: URLSessionTask) {
        calls.withLock { $0[task.taskIdentifier] = call }
    }

    func forget(_ task: URLSessionTask) {
        _ = calls.withLock { $0.removeValue(forKey: task.taskIdentifier) }
        _ = challenged.withLock { $0.removeValue(forKey: task.taskIdentifier) }
    }

    private func call(for task: URLSessionTask) -> PendingCall? {
        calls.withLock { $0[task.taskIdentifier] }
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
    ) {
        let accepted = call(for: dataTask)?.receive(response) ?? false
        completionHandler(accepted ? .allow : .cancel)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        call(for: dataTask)?.receive(data)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let call = calls.withLock { $0.removeValue(forKey: task.taskIdentifier) }
        let kept = challenged.withLock { $0.removeValue(forKey: task.taskIdentifier) }
        call?.complete(error: error, challenged: kept)
    }

    /// The challenges a server's 401 raises (as opposed to TLS ones).
    private static let httpAuthenticationMethods: Set<String> = [
        NSURLAuthenticationMethodDefault, NSURLAuthenticationMethodHTTPBasic, NSURLAuthenticationMethodHTTPDigest,
        NSURLAuthenticationMethodHTMLForm, NSURLAuthenticationMethodNTLM, NSURLAuthenticationMethodNegotiate,
    ]

    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        guard Self.httpAuthenticationMethods.contains(challenge.protectionSpace.authenticationMethod) else {
            completionHandler(.performDefaultHandling, nil)  // TLS trust and client certificates: not ours to refuse
            return
        }
        if let response = challenge.failureResponse as? HTTPURLResponse {
            let kept = HTTPResponse(
                status: response.statusCode, headers: URLSessionTransport.headers(of: response), bodyLost: true)
            challenged.withLock { $0[task.taskIdentifier] = kept }
        }
        completionHandler(.cancelAuthenticationChallenge, nil)
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}

extension Duration {
    /// The duration in (fractional) seconds, for Foundation APIs.
    var timeInterval: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) * 1e-18
    }
}
