import Foundation
import Testing
import WireFormats

@testable import FakeSmartcar

/// Lines the fake logs, as an async sequence: how a test learns the server has reached a point
/// (e.g. a request is stalled) without sleeping.
func loggingOptions(_ base: FakeSmartcar.Options = .init()) -> (FakeSmartcar.Options, AsyncStream<String>) {
    let (lines, continuation) = AsyncStream<String>.makeStream()
    var options = base
    options.log = { continuation.yield($0) }
    return (options, lines)
}

func firstLine(containing text: String, in lines: AsyncStream<String>) async -> String? {
    for await line in lines where line.contains(text) { return line }
    return nil
}

@Suite struct FaultTests {
    private func refresh(_ fake: FakeSmartcar, _ token: String) async throws -> RawResponse {
        try await tokenRequest(fake, [("grant_type", "refresh_token"), ("refresh_token", token)])
    }

    @Test func statusFaultAnswersTheGivenStatusBodyAndHeadersOnce() async throws {
        try await withFake { fake in
            let (_, refreshToken) = fake.mintTokens()
            fake.inject(.status(503, body: #"{"error":"server_error"}"#, headers: ["X-Test": "yes"]), on: .token)
            let faulted = try await refresh(fake, refreshToken)
            #expect(faulted.status == 503)
            #expect(faulted.text == #"{"error":"server_error"}"#)
            #expect(faulted.headers["x-test"] == "yes")
            #expect(faulted.headers["content-type"]?.hasPrefix("application/json") == true)
            #expect(faulted.headers["sc-request-id"]?.isEmpty == false)
            // The faulted request had no effect: the refresh token still works, once.
            #expect(try await refresh(fake, refreshToken).status == 200)
            #expect(fake.count(.token) == 2)
        }
    }

    @Test func rateLimitedAnswers429WithRetryAfterAndAV2Body() async throws {
        try await withFake { fake in
            fake.inject(.rateLimited(retryAfter: "7"), on: .user)
            let response = try await http(fake, "GET", "/v2.0/user", headers: [("Authorization", "Bearer x")])
            #expect(response.status == 429)
            #expect(response.headers["retry-after"] == "7")
            let body = try response.object()
            #expect(body["type"] as? String == "RATE_LIMIT")
            #expect(body["code"] as? String == "SMARTCAR_API")
            #expect(body["statusCode"] as? Int == 429)
            #expect(body["requestId"] as? String == response.headers["sc-request-id"])
            #expect((body["resolution"] as? [String: Any])?["type"] as? String == "RETRY_LATER")
            #expect(body["suggestedUserMessage"] is String)
        }
    }

    @Test func invalidClientBasicRealmSendsTheChallengeHeader() async throws {
        try await withFake { fake in
            fake.inject(.invalidClientBasicRealm)
            let response = try await tokenRequest(fake, [("grant_type", "refresh_token"), ("refresh_token", "x")])
            #expect(response.status == 401)
            #expect(response.headers["www-authenticate"] == #"Basic realm="Smartcar""#)
            #expect(try response.string("error") == "invalid_client")
        }
    }

    @Test func basicChallengeOnInvalidClientAddsTheHeaderToRealRefusals() async throws {
        var options = FakeSmartcar.Options()
        options.basicChallengeOnInvalidClient = true
        try await withFake(options) { fake in
            let response = try await tokenRequest(
                fake, [("grant_type", "refresh_token"), ("refresh_token", "x")],
                auth: basic("sandbox-client-id", "wrong"))
            #expect(response.status == 401)
            #expect(response.headers["www-authenticate"] == #"Basic realm="Smartcar""#)
            #expect(try response.string("error") == "invalid_client")
        }
    }

    @Test func htmlErrorAnswersAnHTMLPage() async throws {
        try await withFake { fake in
            fake.inject(.htmlError(502), on: .appToken)
            let response = try await http(
                fake, "POST", "/oauth2/token", headers: [formType], body: "grant_type=client_credentials")
            #expect(response.status == 502)
            #expect(response.headers["content-type"] == "text/html")
            #expect(response.text.contains("502 Bad Gateway"))
        }
    }

    @Test func dropClosesWithoutAnswerAndWithoutEffect() async throws {
        try await withFake { fake in
            let (_, refreshToken) = fake.mintTokens()
            fake.inject(.drop, on: .token)
            let port = fake.port
            let request = requestText(
                "POST", "/oauth/token", headers: [basic("sandbox-client-id", "sandbox-client-secret"), formType],
                body: FormCoding.encode([("grant_type", "refresh_token"), ("refresh_token", refreshToken)]))
            let answer = try await blocking {
                let connection = try RawConnection(port: port)
                try connection.send(request)
                return try connection.readResponse()
            }
            #expect(answer == nil)
            #expect(try await refresh(fake, refreshToken).status == 200)
        }
    }

    @Test func dropAfterHandlingSpendsTheRefreshTokenButLosesTheAnswer() async throws {
        try await withFake { fake in
            let (_, refreshToken) = fake.mintTokens()
            fake.inject(.dropAfterHandling, on: .token)
            let port = fake.port
            let request = requestText(
                "POST", "/oauth/token", headers: [basic("sandbox-client-id", "sandbox-client-secret"), formType],
                body: FormCoding.encode([("grant_type", "refresh_token"), ("refresh_token", refreshToken)]))
            let answer = try await blocking {
                let connection = try RawConnection(port: port)
                try connection.send(request)
                return try connection.readResponse()
            }
            #expect(answer == nil)
            let retry = try await refresh(fake, refreshToken)
            #expect(retry.status == 400)
            #expect(try retry.string("error") == "invalid_grant")
        }
    }

    @Test func delayAndLatencyPostponeTheAnswer() async throws {
        var options = FakeSmartcar.Options()
        options.latency = .milliseconds(40)
        try await withFake(options) { fake in
            let clock = ContinuousClock()
            let plain = try await clock.measure { _ = try await http(fake, "GET", "/v2.0/user") }
            #expect(plain >= .milliseconds(40))
            fake.inject(.delay(.milliseconds(100)), on: .user)
            var response: RawResponse?
            let delayed = try await clock.measure { response = try await http(fake, "GET", "/v2.0/user") }
            #expect(delayed >= .milliseconds(140))
            #expect(response?.status == 401)
        }
    }

    @Test func latencyIsNotAddedToControlPaths() async throws {
        var options = FakeSmartcar.Options()
        options.latency = .seconds(600)
        try await withFake(options) { fake in
            let control = try await ContinuousClock().measure { _ = try await http(fake, "GET", "/_fake/counts") }
            #expect(control < .seconds(300))
        }
    }

    @Test func faultsApplyToTheirEndpointInInjectionOrderForTheGivenTimes() async throws {
        try await withFake { fake async throws in
            fake.inject(.htmlError(500), on: .user)
            fake.inject(.status(418, body: "teapot"), times: 2)
            // The token request skips the user-only fault and takes the first use of the "any endpoint" one.
            #expect(try await tokenRequest(fake, [("grant_type", "refresh_token")]).status == 418)
            #expect(try await http(fake, "GET", "/v2.0/user").status == 500)
            #expect(try await http(fake, "GET", "/v2.0/user").status == 418)
            #expect(try await http(fake, "GET", "/v2.0/user").status == 401)
            // Unknown paths and control paths neither take faults nor count.
            fake.inject(.status(418, body: "teapot"))
            #expect(try await http(fake, "GET", "/nowhere").status == 404)
            #expect(try await http(fake, "GET", "/_fake/counts").status == 200)
            #expect(try await http(fake, "GET", "/v2.0/user").status == 418)
            #expect(fake.count(.user) == 4)
        }
    }

    @Test func stopReleasesAStalledRequestUnanswered() async throws {
        let (options, lines) = loggingOptions()
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        fake.inject(.stall)
        let port = fake.port
        async let answer = blocking { () -> RawResponse? in
            // Only a guard against a hang: on a busy machine the test may take well over 10 s to call stop().
            let connection = try RawConnection(port: port, timeoutSeconds: 300)
            try connection.send(requestText("GET", "/v2.0/user"))
            return try connection.readResponse()
        }
        #expect(await firstLine(containing: "stalled", in: lines) != nil)
        let stopping = ContinuousClock().measure { fake.stop() }
        #expect(stopping < .seconds(2))
        #expect(try await answer == nil)
    }

    @Test func stopReleasesADelayedAnswerUnanswered() async throws {
        let (options, lines) = loggingOptions()
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        fake.inject(.delay(.seconds(60)))
        let port = fake.port
        async let answer = blocking { () -> RawResponse? in
            // Only a guard against a hang: on a busy machine the test may take well over 10 s to call stop().
            let connection = try RawConnection(port: port, timeoutSeconds: 300)
            try connection.send(requestText("GET", "/v2.0/user"))
            return try connection.readResponse()
        }
        #expect(await firstLine(containing: "/v2.0/user", in: lines) != nil)
        let stopping = ContinuousClock().measure { fake.stop() }
        #expect(stopping < .seconds(2))
        #expect(try await answer == nil)
    }
}

@Suite struct FaultCodingTests {
    @Test func everyFaultRoundTripsThroughJSON() throws {
        let faults: [Fault] = [
            .status(500, body: "x", headers: ["A": "b"]), .rateLimited(retryAfter: "2"), .invalidClientBasicRealm,
            .htmlError(502), .stall, .drop, .dropAfterHandling, .delay(.milliseconds(1500)),
        ]
        for fault in faults {
            let data = try JSONEncoder().encode(fault)
            #expect(try JSONDecoder().decode(Fault.self, from: data) == fault)
        }
    }

    @Test func decodesTheDocumentedShapes() throws {
        func decode(_ text: String) throws -> Fault { try JSONDecoder().decode(Fault.self, from: Data(text.utf8)) }
        #expect(try decode(#"{"kind":"status","status":500}"#) == .status(500, body: ""))
        #expect(try decode(#"{"kind":"rateLimited","retryAfter":3}"#) == .rateLimited(retryAfter: "3"))
        #expect(
            try decode(#"{"kind":"rateLimited","retryAfter":"Wed, 21 Oct 2015 07:28:00 GMT"}"#)
                == .rateLimited(retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"))
        #expect(try decode(#"{"kind":"htmlError"}"#) == .htmlError(502))
        #expect(try decode(#"{"kind":"delay","seconds":0.25}"#) == .delay(.milliseconds(250)))
        #expect(throws: DecodingError.self) { try decode(#"{"kind":"explode"}"#) }
        #expect(throws: DecodingError.self) { try decode(#"{"kind":"delay","seconds":-1}"#) }
    }
}
