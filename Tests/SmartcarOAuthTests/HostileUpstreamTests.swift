import AgentTestSupport
import FakeSmartcar
import Foundation
import Synchronization
import Testing

@testable import SmartcarOAuth

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Issue 12, class 2: nothing Smartcar answers may trap the agent, produce a nonsensical grant, lose a
/// rotated refresh token, or outlast a call's deadline and body cap.
@Suite("Hostile values from upstream")
struct HostileUpstreamTests {
    static let year: TimeInterval = 365 * 24 * 3600

    /// `expires_in` texts as a hostile or broken Smartcar could send them.
    static let hostileLifetimes = [
        "1e20", "1e19", "9223372036854775807", "9223372036854775808", "1e300", "-1e20", "0", "-5", "0.5", "-0",
        "1e400", "-1e400", "1e-400", "\"nan\"", "\"inf\"", "\"-inf\"", "\"1e400\"", "\"soon\"", "true", "[]", "{}",
        "\"\"", "null", "7200", "7200.9", "\"7200\"", "1", "31536000", "31536001", "-9223372036854775808",
    ]

    /// A lifetime drawn from the hostile list or at random over every magnitude and sign.
    static func lifetime(_ random: inout SeededGenerator) -> String {
        if random.chance(0.5) { return hostileLifetimes.randomElement(using: &random)! }
        let mantissa = Double.random(in: 1..<10, using: &random)
        return "\(random.chance(0.3) ? "-" : "")\(mantissa)e\(Int.random(in: -5...400, using: &random))"
    }

    @Test func everyLifetimeGivesASaneGrantOrARefusalThatKeepsTheRotatedToken() async throws {
        var random = SeededGenerator(seed: 12_002)
        let now = FixedClock().date
        for _ in 0..<400 {
            let text = Self.lifetime(&random)
            let body =
                #"{"access_token":"AT-new","token_type":"Bearer","expires_in":\#(text),"refresh_token":"RT-new"}"#
            let client = Fixture.client(StubTransport(Stub.json(200, body)))
            do {
                let grant = try await client.refresh("RT-old")
                let lifetime = grant.expiresAt.timeIntervalSince(now)
                #expect(lifetime >= 0.999 && lifetime <= Self.year + 0.001, "seed \(random.seed), expires_in \(text)")
                #expect(grant.refreshToken == "RT-new")
                #expect(grant.refreshExpiresAt.timeIntervalSince(now) == TokenGrant.refreshTokenLifetime)
                if let number = Double(text), number >= 1, number <= Self.year {
                    #expect(abs(lifetime - number) < 0.001, "expires_in \(text) is used as sent")
                }
            } catch {
                #expect(error.kind == .upstreamError, "expires_in \(text)")
                #expect(error.rotatedRefreshToken?.value == "RT-new", "expires_in \(text): the rotated token is kept")
                #expect(error.message.contains("expires_in"), "expires_in \(text): \(error.message)")
                if let number = Double(text) { #expect(!(number >= 1), "expires_in \(text) was refused") }
            }
        }
    }

    @Test func anAnswerWithoutARefreshTokenKeepsTheOldOne() async throws {
        let transport = StubTransport(Stub.json(200, #"{"access_token":"AT-new","expires_in":7200}"#))
        let grant = try await Fixture.client(transport).refresh("RT-old")
        #expect(grant.accessToken == "AT-new")
        #expect(grant.refreshToken == "RT-old")
        // A code exchange has no old token to keep: the answer is unusable.
        let exchange = await smartcarError { () async throws(SmartcarError) in
            try await Fixture.client(StubTransport(Stub.json(200, #"{"access_token":"A","expires_in":7200}"#)))
                .exchangeCode("code-1", redirectURI: nil)
        }
        #expect(exchange?.kind == .upstreamError)
        #expect(exchange?.rotatedRefreshToken == nil)
    }

    @Test func anUnusableAnswerThatCarriesARefreshTokenHandsItOverWithoutPrintingIt() async throws {
        let bodies = [
            #"{"refresh_token":"RT-new-secret","expires_in":7200}"#,
            #"{"access_token":"","refresh_token":"RT-new-secret"}"#,
            #"{"access_token":7,"refresh_token":"RT-new-secret"}"#,
            #"{"access_token":"AT","expires_in":-1e400,"refresh_token":"RT-new-secret","n":[1e999,"1e999\"x"]}"#,
            #"{"access_token":"AT","expires_in":0,"refresh_token":"RT-new-secret"}"#,
            #"{"access_token":"AT","expires_in":-5,"refresh_token":"RT-new-secret"}"#,
            #"{"access_token":"AT","expires_in":"never","refresh_token":"RT-new-secret"}"#,
        ]
        for body in bodies {
            let error = try #require(
                await smartcarError { () async throws(SmartcarError) in
                    try await Fixture.client(StubTransport(Stub.json(200, body))).refresh("RT-old")
                }, "\(body)")
            #expect(error.kind == .upstreamError, "\(body)")
            #expect(error.rotatedRefreshToken?.value == "RT-new-secret", "\(body)")
            #expect(error.details["refreshTokenRotated"] == true)
            var dumped = ""
            dump(error, to: &dumped)
            for shown in [everythingShown(error), String(reflecting: error), "\(error)", dumped] {
                #expect(!shown.contains("RT-new-secret"), "\(body): \(shown)")
            }
        }
    }

    /// The fake rotates the refresh token, then answers hostile: the rotated token is handed over and is
    /// the one the fake holds live; an endless body ends at the cap.
    @Test func theFakesHostileAnswersAfterRotating() async throws {
        setenv("no_proxy", "127.0.0.1,localhost", 1)
        let fake = try FakeSmartcar()
        defer { fake.stop() }
        let client = SmartcarClient(
            configuration: SmartcarConfiguration(
                clientID: "sandbox-client-id", clientSecret: "sandbox-client-secret", authOrigin: fake.origin,
                requestTimeout: .seconds(60)),
            transport: CurlTransport.shared)
        let faults: [Fault] = [
            .hostileAnswer(expiresIn: nil, omit: ["access_token"]), .hostileAnswer(expiresIn: "-1e400", omit: []),
            .hostileAnswer(expiresIn: "0", omit: []),
        ]
        for fault in faults {
            let minted = fake.mintTokens()
            fake.inject(fault, on: .token)
            let error = try #require(
                await smartcarError { () async throws(SmartcarError) in try await client.refresh(minted.refreshToken) })
            let rotated = try #require(error.rotatedRefreshToken?.value, "\(fault): \(error)")
            #expect(fake.isLive(refreshToken: rotated), "\(fault)")
        }
        let minted = fake.mintTokens()
        fake.inject(.hostileAnswer(expiresIn: "1e20", omit: ["refresh_token"]), on: .token)
        let grant = try await client.refresh(minted.refreshToken)
        #expect(grant.refreshToken == minted.refreshToken, "no refresh token in the answer: the old one is kept")
        #expect(grant.expiresAt.timeIntervalSinceNow <= Self.year)

        fake.inject(.endlessBody, on: .token)
        let endless = try #require(
            await smartcarError { () async throws(SmartcarError) in try await client.refresh(grant.refreshToken) })
        #expect(endless.kind == .upstreamError)
        #expect(endless.message.contains("1 MiB"))
        #expect(endless.details["mayHaveReachedServer"] == true)
    }

    // MARK: - The real transport: body cap and deadline

    /// A scripted upstream on a loopback port, and whether its stream was still running when the call
    /// ended (a call that only ends because the server stopped has not held its deadline or cap).
    private final class Upstream: Sendable {
        let server: ScriptedServer
        private let stoppedByTest = Mutex(false)

        init(_ reply: ScriptedServer.Reply) throws {
            setenv("no_proxy", "127.0.0.1,localhost", 1)
            server = try ScriptedServer { _ in reply }
        }

        /// Sends one refresh-shaped POST with `timeout`; a watchdog stops the server after `watchdog`
        /// (only so that a broken transport fails the test instead of hanging it).
        func send(
            timeout: Duration, watchdog: Duration = .seconds(120)
        ) async -> (Result<HTTPResponse, any Error>, Bool) {
            let dog = Task { [self] in
                do { try await Task.sleep(for: watchdog) } catch { return }
                stoppedByTest.withLock { $0 = true }
                server.stop()
            }
            defer { dog.cancel() }
            let request = HTTPRequest(
                method: "POST", url: server.origin.appendingPathComponent("oauth/token"),
                headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Data("a=b".utf8))
            let result: Result<HTTPResponse, any Error>
            do { result = .success(try await CurlTransport.shared.send(request, timeout: timeout)) } catch {
                result = .failure(error)
            }
            return (result, stoppedByTest.withLock { $0 })
        }
    }

    /// A plain request on the shared transport is answered: an abandoned body does not keep its thread busy.
    static func expectSessionStillServes(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let server = try ScriptedServer { _ in .respond(status: 200, headers: [], body: Array("{}".utf8), delay: .zero)
        }
        defer { server.stop() }
        for _ in 0..<5 {
            let response = try await CurlTransport.shared.send(
                HTTPRequest(method: "GET", url: server.origin), timeout: .seconds(10))
            #expect(response.status == 200, sourceLocation: sourceLocation)
        }
    }

    /// Endless bodies are sent a chunk a millisecond (16 MiB/s or more): past the cap in well under a second,
    /// without the writer and the reader taking both cores from the tests running beside them.
    static let pace = Duration.milliseconds(1)

    static func head(_ lines: String...) -> [UInt8] {
        Array((["HTTP/1.1 200 OK", "Content-Type: application/json"] + lines).joined(separator: "\r\n").utf8)
    }

    @Test func anEndlessChunkedBodyIsCutAtTheCap() async throws {
        let chunk = [UInt8]("4000\r\n".utf8) + [UInt8](repeating: UInt8(ascii: " "), count: 0x4000) + [13, 10]
        let upstream = try Upstream(
            .stream(head: Self.head("Transfer-Encoding: chunked", "", ""), chunk: chunk, pause: Self.pace))
        defer { upstream.server.stop() }
        let (result, watchdogFired) = await upstream.send(timeout: .seconds(60))
        #expect(!watchdogFired, "the call ended only when the server stopped")
        #expect(throws: TransportError(.oversizedAnswer, detail: "an answer body over 1048576 bytes")) {
            try result.get()
        }
        try await Self.expectSessionStillServes()
    }

    @Test func aHugeDeclaredBodyIsRefusedAtTheCap() async throws {
        let upstream = try Upstream(
            .stream(
                head: Self.head("Content-Length: 200000000", "", ""),
                chunk: [UInt8](repeating: UInt8(ascii: " "), count: 1 << 16), pause: Self.pace))
        defer { upstream.server.stop() }
        let (result, watchdogFired) = await upstream.send(timeout: .seconds(60))
        #expect(!watchdogFired)
        #expect(throws: TransportError.self) { try result.get() }
        #expect((try? result.get()) == nil)
        if case .failure(let error as TransportError) = result { #expect(error.kind == .oversizedAnswer) }
        try await Self.expectSessionStillServes()
    }

    @Test func aSlowDripEndsAtTheDeadline() async throws {
        let upstream = try Upstream(
            .stream(
                head: Self.head("Transfer-Encoding: chunked", "", ""), chunk: Array("1\r\n \r\n".utf8),
                pause: .milliseconds(20)))
        defer { upstream.server.stop() }
        let (result, watchdogFired) = await upstream.send(timeout: .seconds(2))
        #expect(!watchdogFired, "the deadline did not hold")
        guard case .failure(let error as TransportError) = result else {
            Issue.record("expected a timeout, got \(result)")
            return
        }
        #expect(error.kind == .timedOut)
    }

    @Test func aBodyJustUnderTheCapIsAnswered() async throws {
        let size = CurlTransport.maximumBodyBytes
        let body = [UInt8]("{\"a\":\"".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: size - 8) + [34, 125]
        let server = try ScriptedServer { _ in .respond(status: 200, headers: [], body: body, delay: .zero) }
        defer { server.stop() }
        setenv("no_proxy", "127.0.0.1,localhost", 1)
        let response = try await CurlTransport.shared.send(
            HTTPRequest(method: "GET", url: server.origin), timeout: .seconds(30))
        #expect(response.status == 200)
        #expect(response.body.count == size)
    }
}
