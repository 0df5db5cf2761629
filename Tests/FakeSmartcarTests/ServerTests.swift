import Foundation
import Testing
import WireFormats

@testable import FakeSmartcar

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct ServerTests {
    /// One long-lived session, never invalidated (see SWIFT-LINUX-NOTES).
    static let session = URLSession(configuration: .ephemeral)

    @Test func keepsTheConnectionOpenBetweenRequests() async throws {
        try await withFake { fake in
            let (accessToken, _) = fake.mintTokens(userID: "kept")
            let port = fake.port
            let (first, second) = try await blocking {
                let connection = try RawConnection(port: port)
                try connection.send(
                    requestText("GET", "/v2.0/user", headers: [("Authorization", "Bearer \(accessToken)")]))
                let first = try connection.readResponse()
                try connection.send(
                    requestText("GET", "/v2.0/user", headers: [("Authorization", "Bearer \(accessToken)")]))
                return (first, try connection.readResponse())
            }
            #expect(first?.headers["connection"] == "keep-alive")
            #expect(try first?.string("id") == "kept")
            #expect(try second?.string("id") == "kept")
            #expect(first?.headers["sc-request-id"] != second?.headers["sc-request-id"])
        }
    }

    @Test func answersPipelinedRequestsInOrder() async throws {
        try await withFake { fake in
            let port = fake.port
            let statuses = try await blocking {
                let connection = try RawConnection(port: port)
                try connection.send(
                    requestText("GET", "/v2.0/user") + requestText("GET", "/nowhere")
                        + requestText("GET", "/oauth/token"))
                return try (0..<3).map { _ in try connection.readResponse()?.status }
            }
            #expect(statuses == [401, 404, 405])
        }
    }

    @Test func honoursConnectionCloseAndHTTP10() async throws {
        try await withFake { fake in
            let port = fake.port
            for (text, version) in [
                (requestText("GET", "/v2.0/user", headers: [("Connection", "close")]), "1.1"),
                ("GET /v2.0/user HTTP/1.0\r\n\r\n", "1.0"),
            ] {
                let (response, closed) = try await blocking {
                    let connection = try RawConnection(port: port)
                    try connection.send(text)
                    return (try connection.readResponse(), try connection.isClosedByServer())
                }
                #expect(response?.status == 401, "HTTP/\(version)")
                #expect(response?.headers["connection"] == "close", "HTTP/\(version)")
                #expect(closed, "HTTP/\(version)")
            }
        }
    }

    @Test func readsAChunkedBodyAfterA100Continue() async throws {
        try await withFake { fake in
            let (_, refreshToken) = fake.mintTokens()
            let port = fake.port
            let form = FormCoding.encode([("grant_type", "refresh_token"), ("refresh_token", refreshToken)])
            let (interim, final) = try await blocking {
                let connection = try RawConnection(port: port)
                try connection.send(
                    requestText(
                        "POST", "/oauth/token",
                        headers: [
                            basic("sandbox-client-id", "sandbox-client-secret"), formType,
                            ("Transfer-Encoding", "chunked"), ("Expect", "100-continue"),
                        ]
                    ).replacingOccurrences(of: "Content-Length: 0\r\n", with: ""))
                let interim = try connection.readOne()
                let half = form.utf8.count / 2
                let (head, tail) = (String(form.prefix(half)), String(form.dropFirst(half)))
                try connection.send(
                    String(head.utf8.count, radix: 16) + ";ext=1\r\n" + head + "\r\n"
                        + String(tail.utf8.count, radix: 16) + "\r\n" + tail + "\r\n0\r\nX-Trailer: 1\r\n\r\n")
                return (interim, try connection.readResponse())
            }
            #expect(interim?.status == 100)
            #expect(final?.status == 200)
            #expect(fake.requests.first?.body == form)
            #expect(fake.requests.first?.form["refresh_token"] == refreshToken)
        }
    }

    @Test func refusesMalformedOrOversizedRequestsAndCloses() async throws {
        try await withFake { fake in
            let port = fake.port
            let cases: [(String, Int)] = [
                ("GET /v2.0/user HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 300_000))\r\n\r\n", 431),
                ("POST /oauth/token HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n", 400),
                ("POST /oauth/token HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
                ("POST /oauth/token HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
                ("NONSENSE\r\n\r\n", 400),
            ]
            for (text, status) in cases {
                let (response, closed) = try await blocking {
                    let connection = try RawConnection(port: port)
                    try connection.send(text)
                    return (try connection.readResponse(), try connection.isClosedByServer())
                }
                #expect(response?.status == status)
                #expect(closed)
            }
            #expect(fake.requests.isEmpty)
        }
    }

    @Test func stopClosesIdleConnectionsAndTheListener() async throws {
        let fake = try FakeSmartcar()
        let port = fake.port
        let connection = try await blocking { () -> RawConnectionBox in
            let connection = try RawConnection(port: port)
            try connection.send(requestText("GET", "/v2.0/user"))
            _ = try connection.readResponse()
            return RawConnectionBox(connection)
        }
        fake.stop()
        fake.stop()  // idempotent
        #expect(try await blocking { try connection.connection.isClosedByServer() })
        #expect(throws: TestFailure.self) { try RawConnection(port: port) }
    }

    @Test func worksWithURLSession() async throws {
        setenv("no_proxy", "127.0.0.1,localhost", 1)
        try await withFake { fake in
            let session = ServerTests.session
            let code = fake.issueCode(redirectURI: "https://example.com/cb", userID: "via-urlsession")
            var request = URLRequest(url: fake.origin.appendingPathComponent("oauth/token"))
            request.httpMethod = "POST"
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.setValue(
                "Basic " + Data("sandbox-client-id:sandbox-client-secret".utf8).base64EncodedString(),
                forHTTPHeaderField: "Authorization")
            request.httpBody = Data(
                FormCoding.encode([
                    ("grant_type", "authorization_code"), ("code", code),
                    ("redirect_uri", "https://example.com/cb"),
                ]).utf8)
            let (data, response) = try await session.data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 200)
            #expect((response as? HTTPURLResponse)?.value(forHTTPHeaderField: "SC-Request-Id") != nil)
            let tokens = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let accessToken = try #require(tokens["access_token"] as? String)

            var userRequest = URLRequest(url: fake.origin.appendingPathComponent("v2.0/user"))
            userRequest.setValue("Bearer \(accessToken)", forHTTPHeaderField: "Authorization")
            let (userData, _) = try await session.data(for: userRequest)
            #expect(try JSONDecoder().decode([String: String].self, from: userData) == ["id": "via-urlsession"])
        }
    }
}

/// Moves a connection (used by one thread at a time) between the test and its blocking helpers.
/// Safe because the test awaits each helper before the next one touches the connection.
final class RawConnectionBox: @unchecked Sendable {
    let connection: RawConnection
    init(_ connection: RawConnection) { self.connection = connection }
}

@Suite struct StartupTests {
    @Test func aTakenPortIsAnError() throws {
        let first = try FakeSmartcar()
        defer { first.stop() }
        var options = FakeSmartcar.Options()
        options.port = first.port
        let error = #expect(throws: FakeServerError.self) { try FakeSmartcar(options: options) }
        #expect(error?.errno == EADDRINUSE)
        #expect(first.origin.absoluteString == "http://127.0.0.1:\(first.port)")
    }

    @Test func releasingTheLastReferenceStopsTheServer() async throws {
        var fake: FakeSmartcar? = try FakeSmartcar()
        let port = try #require(fake?.port)
        #expect(try await http(try #require(fake), "GET", "/v2.0/user").status == 401)
        fake = nil
        #expect(throws: TestFailure.self) { try RawConnection(port: port) }
    }
}
