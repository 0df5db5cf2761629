import AgentTestSupport
import Foundation
import Synchronization
import Testing

@testable import SmartcarOAuth

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The libcurl transport against answers no HTTP server would send: every call returns an answer or throws a
/// classified `TransportError` within its deadline, and the process survives.
@Suite("libcurl transport")
struct CurlTransportTests {
    /// A refresh-shaped POST whose query and body carry secrets that no error may show.
    static func request(_ upstream: RawUpstream, path: String) -> HTTPRequest {
        setenv("no_proxy", "127.0.0.1,localhost", 1)
        return HTTPRequest(
            method: "POST", url: URL(string: "\(upstream.origin)\(path)?flag=QUERY-SECRET")!,
            headers: ["Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic HEADER-SECRET"],
            body: Data("refresh_token=BODY-SECRET".utf8))
    }

    static func send(
        _ upstream: RawUpstream, path: String = "/oauth/token", timeout: Duration = .seconds(60)
    ) async -> Result<HTTPResponse, any Error> {
        do {
            return .success(try await CurlTransport.shared.send(request(upstream, path: path), timeout: timeout))
        } catch {
            return .failure(error)
        }
    }

    /// The path of a request head's request line, without the query.
    static func path(of head: String) -> String {
        String(head.split(separator: " ").dropFirst().first?.split(separator: "?").first ?? "")
    }

    static let goodAnswer = Array(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"access_token\":1}".utf8)

    /// Foundation on Linux traps on this ("Transfer completed, but there's no response").
    @Test func aConnectionClosedInsideTheHeadIsLost() async throws {
        let upstream = try RawUpstream { _ in .init(bytes: Array("HTTP/1.1 200 OK\r\nContent-Type: appl".utf8)) }
        defer { upstream.stop() }
        let result = await Self.send(upstream)
        guard case .failure(let error as TransportError) = result else {
            Issue.record("expected a lost connection, got \(result)")
            return
        }
        #expect(error.kind == .connectionLost)
        #expect(upstream.requests.count == 1, "not resent")
    }

    @Test func anAnswerIsReadWithItsHeaders() async throws {
        let upstream = try RawUpstream { _ in .init(bytes: Self.goodAnswer) }
        defer { upstream.stop() }
        let response = try await Self.send(upstream).get()
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"access_token":1}"#)
        let head = try #require(upstream.requests.first)
        #expect(head.hasPrefix("POST /oauth/token?flag=QUERY-SECRET HTTP/1.1"))
        #expect(head.contains("Authorization: Basic HEADER-SECRET"))
    }

    @Test func requestsGoOutAsGivenOnAConnectionOfTheirOwn() async throws {
        let upstream = try RawUpstream { _ in .init(bytes: Self.goodAnswer) }
        defer { upstream.stop() }
        for (method, body) in [("POST", nil), ("GET", nil), ("DELETE", nil), ("PUT", Data("x=1".utf8))] {
            let request = HTTPRequest(method: method, url: upstream.origin, headers: ["X-Empty": ""], body: body)
            _ = try await CurlTransport.shared.send(request, timeout: .seconds(60))
        }
        let heads = upstream.requests
        #expect(heads.map { $0.split(separator: " ")[0] } == ["POST", "GET", "DELETE", "PUT"])
        #expect(heads[0].contains("Content-Length: 0"), "a POST without a body says so")
        #expect(heads[3].contains("Content-Length: 3"))
        #expect(
            heads.allSatisfy { $0.contains("X-Empty:") && $0.contains("Connection: close") && !$0.contains("Expect") })
    }

    /// URLSession could only cancel this challenge and lose its body; Smartcar's reason is in the body.
    @Test func aBasicChallengeComesBackWithItsBody() async throws {
        let body = #"{"error":"invalid_client","error_description":"Invalid client credentials."}"#
        let upstream = try RawUpstream { _ in
            .init(
                bytes: Array(
                    ("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Smartcar\"\r\n"
                        + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)").utf8))
        }
        defer { upstream.stop() }
        let response = try await Self.send(upstream).get()
        #expect(response.status == 401)
        #expect(String(decoding: response.body, as: UTF8.self) == body)
        #expect(upstream.requests.count == 1, "no second attempt with credentials")
    }

    @Test func aRedirectIsNotFollowed() async throws {
        let upstream = try RawUpstream { head in
            .init(
                bytes: Array(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n".utf8))
        }
        defer { upstream.stop() }
        let response = try await Self.send(upstream).get()
        #expect(response.status == 307)
        #expect(response.header("location") == "/elsewhere")
        #expect(upstream.requests.count == 1)
    }

    @Test func onlyHTTPAndHTTPSAreSpoken() async throws {
        for url in ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/x"] {
            await #expect(throws: TransportError.self, "\(url)") {
                try await CurlTransport.shared.send(
                    HTTPRequest(method: "GET", url: URL(string: url)!), timeout: .seconds(10))
            }
        }
    }

    @Test func aStallEndsAtTheDeadline() async throws {
        let upstream = try RawUpstream { _ in .init(bytes: [], hold: true) }
        defer { upstream.stop() }
        guard case .failure(let error as TransportError) = await Self.send(upstream, timeout: .milliseconds(500))
        else {
            Issue.record("expected a timeout")
            return
        }
        #expect(error.kind == .timedOut)
    }

    @Test func headersThatNeverEndAreCut() async throws {
        let upstream = try RawUpstream { _ in
            .init(
                bytes: Array(
                    ("HTTP/1.1 200 OK\r\n" + String(repeating: "X-Padding: aaaaaaaaaaaaaaaa\r\n", count: 8000)).utf8),
                hold: true)
        }
        defer { upstream.stop() }
        guard case .failure(let error as TransportError) = await Self.send(upstream) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(error.kind == .oversizedAnswer)
    }

    @Test(.timeLimit(.minutes(2))) func cancellingAHeldCallThrowsCancellationAndHangsUp() async throws {
        let upstream = try RawUpstream { _ in .init(bytes: Array("HTTP/1.1 200 OK\r\n".utf8), hold: true) }
        defer { upstream.stop() }
        let call = Task { await Self.send(upstream, timeout: .seconds(600)) }
        var arrivals = upstream.arrivals.stream.makeAsyncIterator()
        _ = await arrivals.next()
        call.cancel()
        guard case .failure(let error) = await call.value else {
            Issue.record("expected a cancellation")
            return
        }
        #expect(error is CancellationError)
        var hangUps = upstream.hangUps.stream.makeAsyncIterator()
        #expect(await hangUps.next() != nil, "the transfer was removed and its connection closed")
    }

    @Test func aCallCancelledBeforeItStartsSendsNothing() async throws {
        let upstream = try RawUpstream { _ in .init(bytes: Self.goodAnswer) }
        defer { upstream.stop() }
        let call = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await Self.send(upstream)
        }
        guard case .failure(let error) = await call.value else {
            Issue.record("expected a cancellation")
            return
        }
        #expect(error is CancellationError)
        #expect(upstream.requests.isEmpty)
    }

    @Test func manyConcurrentCallsEachGetTheirOwnAnswer() async throws {
        let upstream = try RawUpstream { head in
            let path = Self.path(of: head)
            return .init(bytes: Array("HTTP/1.1 200 OK\r\nContent-Length: \(path.utf8.count)\r\n\r\n\(path)".utf8))
        }
        defer { upstream.stop() }
        let answers = await withTaskGroup(of: (Int, String?).self) { group in
            for index in 0..<100 {
                group.addTask {
                    let result = await Self.send(upstream, path: "/call-\(index)")
                    return (index, (try? result.get()).map { String(decoding: $0.body, as: UTF8.self) })
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        for index in 0..<100 { #expect(answers[index] == "/call-\(index)") }
    }

    // MARK: - Search: broken answers

    /// A well-formed answer (Content-Length or chunked), then cut, corrupted or padded with garbage.
    static func brokenAnswer(_ random: inout SeededGenerator) -> RawUpstream.Script {
        let body = Array(#"{"access_token":"AT","expires_in":7200,"refresh_token":"RT"}"#.utf8)
        var head =
            "HTTP/1.1 \([200, 400, 401, 500, 302].randomElement(using: &random)!) X\r\nContent-Type: application/json\r\n"
        var bytes: [UInt8]
        if random.chance(0.5) {
            head += "Content-Length: \(body.count)\r\n\r\n"
            bytes = Array(head.utf8) + body
        } else {
            head += "Transfer-Encoding: chunked\r\n\r\n"
            bytes =
                Array(head.utf8) + Array(String(body.count, radix: 16).utf8) + [13, 10] + body
                + Array("\r\n0\r\n\r\n".utf8)
        }
        switch Int.random(in: 0..<4, using: &random) {
        case 0: bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
        case 1:
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
        case 2:
            let at = Int.random(in: 0...bytes.count, using: &random)
            bytes.insert(
                contentsOf: (0..<Int.random(in: 1...64, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }, at: at)
        default:
            bytes = (0..<Int.random(in: 0...256, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
        return .init(bytes: bytes, hold: random.chance(0.2))
    }

    @Test func brokenAnswersAlwaysEndInAnAnswerOrAClassifiedError() async throws {
        var random = SeededGenerator(seed: 12_009)
        for round in 0..<6 {
            let scripts = (0..<40).map { _ in Self.brokenAnswer(&random) }
            // Each request names its script in its path: /case/N.
            let upstream = try RawUpstream { head in
                let index = Int(Self.path(of: head).dropFirst("/case/".count))
                return index.map { scripts[$0] } ?? .init(bytes: Array("HTTP/1.1 599 No Such Case\r\n\r\n".utf8))
            }
            defer { upstream.stop() }
            let outcomes = await withTaskGroup(of: (Int, Result<HTTPResponse, any Error>).self) { group in
                for index in scripts.indices {
                    group.addTask { (index, await Self.send(upstream, path: "/case/\(index)", timeout: .seconds(2))) }
                }
                return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            for (index, outcome) in outcomes {
                let context =
                    "seed \(random.seed) round \(round): \(String(decoding: scripts[index].bytes, as: UTF8.self).debugDescription)"
                switch outcome {
                case .success(let response):
                    #expect((100...999).contains(response.status) && response.status != 599, "\(context)")
                case .failure(let error as TransportError):
                    #expect(error.kind != .other && error.kind != .cannotConnect, "\(error) \(context)")
                    for secret in ["QUERY-SECRET", "HEADER-SECRET", "BODY-SECRET", "/case/"] {
                        #expect(!"\(error)".contains(secret))
                    }
                case .failure(let error): Issue.record("unclassified \(error) \(context)")
                }
            }
            #expect(upstream.requests.count == scripts.count, "one request each, none resent")
        }
    }
}
