import AgentSupport
import Foundation
import Synchronization
import Testing

@testable import SmartcarOAuth

/// A scripted `HTTPTransport`: records every request and answers from a script, in order.
/// Running past the script answers 599 so a test sees its own mistake as a failed expectation.
final class StubTransport: HTTPTransport {
    typealias Answer = Result<HTTPResponse, TransportError>
    private let state: Mutex<(requests: [HTTPRequest], timeouts: [Duration], script: [Answer])>

    init(_ script: [Answer]) { state = Mutex(([], [], script)) }
    convenience init(_ answers: Answer...) { self.init(answers) }

    func send(_ request: HTTPRequest, timeout: Duration) async throws -> HTTPResponse {
        let answer = state.withLock { state -> Answer in
            state.requests.append(request)
            state.timeouts.append(timeout)
            return state.script.isEmpty ? .success(HTTPResponse(status: 599)) : state.script.removeFirst()
        }
        return try answer.get()
    }

    var requests: [HTTPRequest] { state.withLock { $0.requests } }
    var timeouts: [Duration] { state.withLock { $0.timeouts } }
}

/// A transport that must never be reached (credentials refused before any connection): being called
/// fails the test.
final class UnreachableTransport: HTTPTransport {
    private let calls = Mutex(0)
    var callCount: Int { calls.withLock { $0 } }

    func send(_ request: HTTPRequest, timeout: Duration) async throws -> HTTPResponse {
        calls.withLock { $0 += 1 }
        Issue.record("the transport was called for \(request)")
        throw TransportError(.other, detail: "the transport must not be called")
    }
}

/// Records the pauses the client asks for and returns at once (tests never really wait).
final class SleepRecorder: Sendable {
    private let pauses = Mutex<[Duration]>([])
    var recorded: [Duration] { pauses.withLock { $0 } }

    /// A policy whose jitter is the identity (the pause is the cap) and whose sleep only records.
    func policy(maxAttempts: Int = 3) -> RetryPolicy {
        RetryPolicy(
            maxAttempts: maxAttempts, jitter: { $0 }, sleep: { [self] pause in pauses.withLock { $0.append(pause) } })
    }
}

struct FixedClock: WallClock {
    var date = Date(timeIntervalSince1970: 1_800_000_000)
    func now() -> Date { date }
}

enum Stub {
    static func json(_ status: Int, _ body: String, headers: [String: String] = [:]) -> StubTransport.Answer {
        var headers = headers
        headers["Content-Type"] = headers["Content-Type"] ?? "application/json"
        return .success(HTTPResponse(status: status, headers: headers, body: Data(body.utf8)))
    }

    static func failure(_ kind: TransportError.Kind) -> StubTransport.Answer {
        .failure(TransportError(kind, detail: "stub"))
    }

    static let tokenPair = json(
        200, #"{"access_token":"AT-1","token_type":"Bearer","expires_in":7200,"refresh_token":"RT-1"}"#)
    static let appToken = json(200, #"{"access_token":"APP-1","token_type":"Bearer","expires_in":3600}"#)
    static let user = json(200, #"{"id":"user-42"}"#)
}

enum Fixture {
    static let secret = "s3cr3t-value"
    static let basic = "Basic Q0lEOnMzY3IzdC12YWx1ZQ=="
    static let configuration = SmartcarConfiguration(clientID: "CID", clientSecret: secret)

    static func client(
        _ transport: any HTTPTransport, configuration: SmartcarConfiguration = configuration,
        retry: RetryPolicy = .never
    ) -> SmartcarClient {
        SmartcarClient(configuration: configuration, transport: transport, clock: FixedClock(), retry: retry)
    }
}

extension HTTPRequest {
    var bodyText: String { body.map { String(decoding: $0, as: UTF8.self) } ?? "" }
}

/// Runs `body` and returns the `SmartcarError` it threw (nil if it did not throw one).
func smartcarError<T>(_ body: () async throws(SmartcarError) -> T) async -> SmartcarError? {
    do { _ = try await body(); return nil } catch { return error }
}

/// Every string the error would show a client: message and details, JSON-encoded.
func everythingShown(_ error: SmartcarError) -> String {
    let data = (try? JSONEncoder().encode(error.details)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    return error.message + " " + data + " " + error.description
}
