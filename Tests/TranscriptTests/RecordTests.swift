import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing
import TranscriptReplay
import WireFormats

/// `--record`: a live session against the sandbox becomes a transcript that holds none of the session's
/// secrets and replays green, unchanged, against the scripted upstream.
@Suite struct RecordTests {
    /// Values a recording must never contain, whatever the session: the sandbox's credentials and the
    /// prefixes of every token and code the fake mints (refresh tokens never reach the client, so they
    /// are caught by prefix).
    static var alwaysSecret: [String] {
        let options = FakeSmartcar.Options()
        return [
            options.clientSecret, options.clientID,
            Data("\(options.clientID):\(options.clientSecret)".utf8).base64EncodedString(),
            "fake-at-", "fake-rt-", "fake-code-", "fake-app-",
        ]
    }

    @Test func theReadmeWalkthroughRecordedHasNoSecretAndReplaysUnchanged() async throws {
        let folder = try TemporaryFolder()
        let file = folder.file("walkthrough.transcript")
        let seen = try await onThread { () throws -> [String] in
            let session = try LiveSession(arguments: ["--sandbox", "--record", file])
            let built = try session.call(request(1, "buildConnectURL", ["key": "my-car", "scope": ["read_odometer"]]))
            let redirect = try Browser.redirect(for: built["result"]?["url"]?.stringValue ?? "")
            _ = try session.call(request(2, "handleRedirect", ["url": .string(redirect)]))
            _ = try session.call(request(3, "getToken", ["key": "my-car"]))
            _ = try session.call(request(4, "getToken", ["key": "my-car", "forceRefresh": true]))
            _ = try session.call(request(5, "listTokens"))
            #expect(session.finish() == 0)
            // The code, the state and the access tokens the session showed.
            return [redirect] + session.replies.flatMap(\.allStrings).filter { $0.contains("fake-") || $0.count == 32 }
        }
        #expect(seen.contains { $0.hasPrefix("fake-at-") }, "the session handed out no access token: \(seen)")
        try await expectRedactedAndReplayable(file, secrets: seen + Self.alwaysSecret + Self.queryValues(seen[0]))
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.contains("\"refresh_token\": \"{{refresh_1}}\""), "the refresh was not recorded:\n\(text)")
        #expect(text.contains("\"code\": \"{{code_1}}\""), "the code exchange was not recorded:\n\(text)")
    }

    @Test func errorsImportsAndAppTokensRecordedHaveNoSecretAndReplayUnchanged() async throws {
        let folder = try TemporaryFolder()
        let file = folder.file("errors.transcript")
        let imported = ["imported-access-token-4711", "imported-refresh-token-4711"]
        let seen = try await onThread { () throws -> [String] in
            let session = try LiveSession(arguments: ["--sandbox", "--record", file, "--allow-clock-control"])
            _ = try session.call(request(1, "initialize", ["notifications": true]))
            _ = try session.call(
                request(
                    2, "storeToken",
                    [
                        "key": "imported", "accessToken": .string(imported[0]), "refreshToken": .string(imported[1]),
                        "expiresAt": "2030-01-01T00:00:00Z",
                    ]))
            _ = try session.call(request(3, "getToken", ["key": "imported"]))
            // The fake never issued that refresh token: the forced refresh is rejected.
            _ = try session.call(request(4, "getToken", ["key": "imported", "forceRefresh": true]))
            let built = try session.call(
                request(5, "buildConnectURL", ["key": "refused", "singleSelectVIN": "5YJSA1E14FF101307"]))
            let refused = try Browser.redirect(
                for: (built["result"]?["url"]?.stringValue ?? "") + "&fake_error=vehicle_incompatible")
            _ = try session.call(request(6, "handleRedirect", ["url": .string(refused)]))
            // Without a key, the tokens are stored under the Smartcar user id.
            let unnamed = try session.call(request(11, "buildConnectURL"))
            let redirect = try Browser.redirect(
                for: (unnamed["result"]?["url"]?.stringValue ?? "") + "&fake_user=user-0042")
            _ = try session.call(request(12, "handleRedirect", ["url": .string(redirect)]))
            _ = try session.call(request(7, "exchangeCode", ["code": "made-up-code-0815", "key": "x"]))
            _ = try session.call(request(8, "appToken"))
            _ = try session.call(request(9, "$/advanceClock", ["seconds": 60]))
            _ = try session.call(request(10, "appToken"))
            #expect(session.finish() == 0)
            return [refused] + session.replies.flatMap(\.allStrings).filter { $0.contains("fake-") || $0.count == 32 }
        }
        let secrets =
            seen + imported + ["5YJSA1E14FF101307", "made-up-code-0815", "user-0042"] + Self.alwaysSecret
            + Self.queryValues(seen[0])
        try await expectRedactedAndReplayable(file, secrets: secrets)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.contains("\"vin\": \"{{vin_1}}\""), "the refused vehicle is not in the recording:\n\(text)")
        #expect(text.contains("\"key\": \"{{user_1}}\""), "the user id is not a placeholder:\n\(text)")
        #expect(text.contains("\"reauthRequired\""), "the rejected refresh is not in the recording:\n\(text)")
    }

    @Test func aSessionThatExitsDuringARefreshRecordsTheStallAndTheExitCode() async throws {
        let folder = try TemporaryFolder()
        let file = folder.file("exit.transcript")
        try await onThread {
            let session = try LiveSession(arguments: ["--sandbox", "--record", file])
            let built = try session.call(request(1, "buildConnectURL", ["key": "car"]))
            let redirect = try Browser.redirect(for: built["result"]?["url"]?.stringValue ?? "")
            _ = try session.call(request(2, "handleRedirect", ["url": .string(redirect)]))
            // The sandbox's Smartcar will not answer the next refresh; the client exits meanwhile.
            let origin = URL(string: built["result"]?["url"]?.stringValue ?? "")!.deletingLastPathComponent()
                .deletingLastPathComponent()
            try Browser.post(
                origin.appendingPathComponent("_fake/fault"),
                body: #"{"fault": {"kind": "stall"}, "endpoint": "token"}"#)
            session.send(request(3, "getToken", ["key": "car", "forceRefresh": true]))
            // Exit once the refresh has reached Smartcar (the code exchange was the first request).
            let counts = origin.appendingPathComponent("_fake/counts")
            let deadline = ContinuousClock.now + .seconds(10)
            while try !Browser.get(counts).contains(#""token":2"#) && ContinuousClock.now < deadline {}
            session.send(["jsonrpc": "2.0", "method": "exit"])
            #expect(session.finish() == 1)
        }
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.contains(#""response": {"fault": "stall"}"#), "\(text)")
        #expect(
            text.contains("{\"waitForUpstream\": 2}\n{\"send\": {\"jsonrpc\": \"2.0\", \"method\": \"exit\"}}"),
            "\(text)")
        #expect(text.hasSuffix("{\"closeInput\": true}\n{\"expectExit\": 1}\n"), "\(text)")
        try await expectRedactedAndReplayable(file, secrets: Self.alwaysSecret)
    }

    /// The file is private, holds none of `secrets`, and replays green as it is.
    func expectRedactedAndReplayable(_ file: String, secrets: [String]) async throws {
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o777 } == 0o600)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        for secret in Set(secrets) where secret.count >= 6 {
            #expect(!text.contains(secret), "the recording holds \(secret):\n\(text)")
        }
        let result = await ReplaySlots.shared.run(file, options: ReplayOptions(agent: Paths.agent))
        #expect(result.passed, "\(result.report)\n\(text)")
    }

    /// The code, the state and the VIN in a redirect URL's query.
    static func queryValues(_ url: String) -> [String] {
        URLComponents(string: url)?.queryItems?.filter { ["code", "state", "vin"].contains($0.name) }.compactMap(
            \.value) ?? []
    }
}
