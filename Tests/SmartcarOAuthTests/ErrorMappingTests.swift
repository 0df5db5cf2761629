import Foundation
import Testing

@testable import SmartcarOAuth

/// Smartcar's error shapes → the error table's kinds and `data`, through a scripted transport.
@Suite("Error mapping")
struct ErrorMappingTests {
    private func exchangeError(_ answer: StubTransport.Answer, code: String = "code-1") async -> SmartcarError? {
        await smartcarError { () async throws(SmartcarError) in
            try await Fixture.client(StubTransport(answer)).exchangeCode(code, redirectURI: nil)
        }
    }

    private func refreshError(_ answer: StubTransport.Answer, token: String = "refresh-1") async -> SmartcarError? {
        await smartcarError { () async throws(SmartcarError) in
            try await Fixture.client(StubTransport(answer)).refresh(token)
        }
    }

    @Test func invalidClientOAuthShape() async throws {
        let error = try #require(
            await exchangeError(
                Stub.json(
                    401, #"{"error":"invalid_client","error_description":"Invalid client credentials."}"#,
                    headers: ["SC-Request-Id": "req-9"])))
        #expect(error.kind == .invalidClient)
        #expect(error.details["status"] == 401)
        #expect(error.details["error"] == "invalid_client")
        #expect(error.details["description"] == "Invalid client credentials.")
        #expect(error.details["requestId"] == "req-9")
        #expect(error.kind == .invalidClient)
    }

    @Test func bodilessChallenge401IsInvalidClient() async throws {
        let answer = StubTransport.Answer.success(
            HTTPResponse(status: 401, headers: ["WWW-Authenticate": #"Basic realm="Smartcar""#]))
        let error = try #require(await refreshError(answer))
        #expect(error.kind == .invalidClient)
        #expect(error.details["error"] == "invalid_client")
        #expect(error.details["status"] == 401)
    }

    @Test(arguments: ["invalid_grant", "invalid_request"])
    func exchangeRefusalIsInvalidGrant(_ code: String) async throws {
        let error = try #require(
            await exchangeError(Stub.json(400, #"{"error":"\#(code)","error_description":"Invalid code: code-1"}"#)))
        #expect(error.kind == .invalidGrant)
        #expect(error.details["error"] == .string(code))
        #expect(
            error.details["description"] == "Invalid code: [redacted]",
            "the code is a secret even when Smartcar echoes it")
        #expect(!everythingShown(error).contains("code-1"))
    }

    @Test(arguments: [400, 401])
    func refreshInvalidGrantIsReauthRequired(_ status: Int) async throws {
        let error = try #require(
            await refreshError(
                Stub.json(status, #"{"error":"invalid_grant","error_description":"Invalid or expired refresh token."}"#)
            ))
        #expect(error.kind == .reauthRequired)
        #expect(error.kind == .reauthRequired)
        #expect(error.details["description"] == "Invalid or expired refresh token.")
    }

    @Test func refreshInvalidClientStaysInvalidClient() async throws {
        let error = try #require(await refreshError(Stub.json(401, #"{"error":"invalid_client"}"#)))
        #expect(error.kind == .invalidClient)
    }

    @Test func otherOAuthErrorIsUpstreamError() async throws {
        let error = try #require(
            await refreshError(
                Stub.json(400, #"{"error":"unsupported_grant_type","error_description":"Unsupported grant_type: x."}"#))
        )
        #expect(error.kind == .upstreamError)
        #expect(error.details["error"] == "unsupported_grant_type")
        #expect(error.kind == .upstreamError)
    }

    @Test func v2ShapeKeepsEverythingSmartcarSaid() async throws {
        let body =
            #"{"type":"PERMISSION","code":"VEHICLE","description":"The vehicle refused.","docURL":"https://smartcar.com/docs/x","statusCode":403,"requestId":"body-req","resolution":{"type":"REAUTHENTICATE"},"suggestedUserMessage":"Reconnect your car.","detail":[{"field":"x"}]}"#
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(StubTransport(Stub.json(403, body, headers: ["SC-Request-Id": "header-req"])))
                    .userID(accessToken: "at")
            })
        #expect(error.kind == .upstreamError)
        #expect(
            error.details == [
                "status": 403, "error": "PERMISSION", "code": "VEHICLE", "description": "The vehicle refused.",
                "docURL": "https://smartcar.com/docs/x", "requestId": "body-req",
                "resolution": ["type": "REAUTHENTICATE"],
                "suggestedUserMessage": "Reconnect your car.",
            ])
    }

    @Test func stringResolutionIsKept() async throws {
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(
                    StubTransport(
                        Stub.json(
                            401,
                            #"{"type":"AUTHENTICATION","code":null,"description":"The provided token is invalid.","resolution":"REAUTHENTICATE"}"#
                        ))
                )
                .userID(accessToken: "at")
            })
        #expect(error.kind == .upstreamError)
        #expect(error.details["resolution"] == "REAUTHENTICATE")
        #expect(error.details["code"] == nil)
    }

    @Test func v1Shape() async throws {
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(
                    StubTransport(
                        Stub.json(
                            403, #"{"error":"authentication_error","message":"Invalid or expired token provided."}"#))
                )
                .applicationToken()
            })
        #expect(error.kind == .upstreamError)
        #expect(error.details["error"] == "authentication_error")
        #expect(error.details["description"] == "Invalid or expired token provided.")
    }

    @Test func htmlBodyKeepsStatusNotContent() async throws {
        let html = StubTransport.Answer.success(
            HTTPResponse(
                status: 502, headers: ["Content-Type": "text/html; charset=utf-8"],
                body: Data("<html><title>502 Bad Gateway</title> code-1</html>".utf8)))
        let error = try #require(await exchangeError(html))
        #expect(error.kind == .upstreamUnavailable)
        #expect(error.details["status"] == 502)
        #expect(error.details["description"] == "non-JSON response (text/html)")
        #expect(error.details["mayHaveReachedServer"] == true)
        #expect(
            error.message.contains(
                "the authorization code may have been used; ask the user to connect again if a retry fails"))
        #expect(!everythingShown(error).contains("Bad Gateway"))
    }

    @Test func unknown4xxWithTextBody() async throws {
        let text = StubTransport.Answer.success(
            HTTPResponse(status: 418, headers: ["Content-Type": "text/plain"], body: Data("teapot".utf8)))
        let error = try #require(await refreshError(text))
        #expect(error.kind == .upstreamError)
        #expect(error.details["description"] == "non-JSON response (text/plain)")
    }

    @Test func redirectIsNotFollowedAndIsAnError() async throws {
        let error = try #require(
            await refreshError(.success(HTTPResponse(status: 307, headers: ["Location": "https://evil.example/"]))))
        #expect(error.kind == .upstreamError)
        #expect(error.details["status"] == 307)
    }

    @Test func malformedSuccessfulAnswers() async throws {
        // (A refresh answer without a refresh token keeps the old one: HostileUpstreamTests.)
        for body in ["not json", "{}", #"{"access_token":""}"#, #"{"access_token":"AT","expires_in":0}"#, "[1]"] {
            let transport = StubTransport(Stub.json(200, body))
            let error = try #require(
                await smartcarError { () async throws(SmartcarError) in
                    try await Fixture.client(transport, retry: SleepRecorder().policy()).refresh("refresh-1")
                })
            #expect(error.kind == .upstreamError, "\(body)")
            #expect(error.message.contains("Smartcar answered the token refresh with 200 but"), "\(body)")
            #expect(error.details["mayHaveReachedServer"] == true)
            #expect(transport.requests.count == 1, "a 200 is never retried")
        }
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(StubTransport(Stub.json(200, #"{"name":"x"}"#))).userID(accessToken: "at")
            })
        #expect(error.kind == .upstreamError)
    }

    @Test func lenientTokenFields() async throws {
        let grant = try await Fixture.client(
            StubTransport(Stub.json(200, #"{"access_token":"A","refresh_token":"R"}"#))
        ).refresh("r")
        #expect(grant.tokenType == "Bearer")
        #expect(grant.expiresAt == FixedClock().date + 7200)
        let app = try await Fixture.client(StubTransport(Stub.json(200, #"{"access_token":"A","expires_in":"60"}"#)))
            .applicationToken()
        #expect(app.expiresAt == FixedClock().date + 60)
    }

    @Test func noSecretInAnyError() async throws {
        let secrets = [Fixture.secret, "Q0lEOnMzY3IzdC12YWx1ZQ==", "refresh-secret-1"]
        let echo =
            #"{"error":"invalid_grant","error_description":"token refresh-secret-1 for CID:s3cr3t-value Q0lEOnMzY3IzdC12YWx1ZQ==","resolution":{"note":"refresh-secret-1"}}"#
        let answers: [StubTransport.Answer] = [
            Stub.json(400, echo), Stub.json(401, echo), Stub.json(429, echo), Stub.json(500, echo),
            Stub.json(200, echo),
            Stub.failure(.timedOut), Stub.failure(.connectionLost), Stub.failure(.cannotConnect),
        ]
        for answer in answers {
            let error = try #require(await refreshError(answer, token: "refresh-secret-1"))
            let shown = everythingShown(error)
            for secret in secrets { #expect(!shown.contains(secret), "\(error.kind) leaks") }
        }
    }

    @Test func controlCharactersAndLengthAreCapped() async throws {
        let long = String(repeating: "x", count: 2000)
        let error = try #require(
            await refreshError(Stub.json(400, #"{"error":"odd","error_description":"line1\nFAKE LOG LINE \#(long)"}"#)))
        let description = try #require(error.details["description"]?.stringValue)
        #expect(!description.contains("\n"))
        #expect(description.count <= Redactor.maxLength + 1)
    }

    @Test func emptyArgumentsAreInvalidArguments() async throws {
        let client = Fixture.client(UnreachableTransport())
        #expect(
            await smartcarError { () async throws(SmartcarError) in try await client.exchangeCode("", redirectURI: nil)
            }?.kind == .invalidArgument)
        #expect(
            await smartcarError { () async throws(SmartcarError) in try await client.refresh("") }?.kind
                == .invalidArgument)
        #expect(
            await smartcarError { () async throws(SmartcarError) in try await client.userID(accessToken: "") }?.kind
                == .invalidArgument)
    }

    @Test func descriptionsHideTokens() {
        let grant = TokenGrant(
            accessToken: "AT-secret", refreshToken: "RT-secret", expiresAt: Date(), refreshExpiresAt: Date())
        let app = ApplicationToken(accessToken: "APP-secret", expiresAt: Date())
        let shown = "\(grant) \(String(reflecting: grant)) \(app) \(Fixture.configuration)"
        for secret in ["AT-secret", "RT-secret", "APP-secret", Fixture.secret] {
            #expect(!shown.contains(secret), "\(shown)")
        }
    }
}
