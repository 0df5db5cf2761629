import AgentTestSupport
import Foundation
import Testing
import WireFormats

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 16: `connect` against the real binary in `--sandbox`, whose fake Connect approves at once; a browser
/// is played by `FakeBrowser`, which follows the fake's redirect to the agent's loopback port.
@Suite struct LoopbackConnectTests {
    static let freePort = "http://127.0.0.1:0/callback"

    /// Starts `connect` as request `id` and returns the `connectURL` notification's params.
    static func startConnect(
        _ agent: AgentProcess, id: Int, key: String = "car", redirectURI: String = freePort,
        extra: [String: JSONValue] = [:]
    ) async throws -> JSONValue {
        var params: [String: JSONValue] = ["key": .string(key), "redirectURI": .string(redirectURI)]
        params.merge(extra) { _, new in new }
        let before = agent.inbox.notifications.count
        agent.send(id: .int(Int64(id)), "connect", .object(params))
        try await agent.waitFor("a connectURL notification") { $0.notifications.count > before }
        let notification = agent.inbox.notifications[before]
        #expect(notification["method"] == "connectURL")
        return try #require(notification["params"])
    }

    static func port(of redirectURI: JSONValue?) throws -> UInt16 {
        let text = try #require(redirectURI?.stringValue)
        let url = try #require(URL(string: text))
        return UInt16(try #require(url.port))
    }

    static func isListening(_ port: UInt16) -> Bool {
        guard let fd = try? FakeBrowser.connected(port: port) else { return false }
        close(fd)
        return true
    }

    @Test func aBrowserFollowingTheRedirectConnectsTheKey() async throws {
        let agent = try AgentProcess(arguments: ["--sandbox"])
        let announced = try await Self.startConnect(agent, id: 1, extra: ["scope": ["read_odometer"]])
        #expect(announced["key"] == "car")
        let url = try #require(announced["url"]?.stringValue)
        let port = try Self.port(of: announced["redirectURI"])
        #expect(port != 0)
        #expect(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A\(port)%2Fcallback"), "\(url)")
        let page = try FakeBrowser.visit(url)
        #expect(page.status == 200)
        #expect(page.body.contains("Connected: the vehicle&#39;s access is stored under the key &#39;car&#39;"))
        let result = try await agent.response(id: 1)
        #expect(result["result"]?["key"] == "car", "\(result)")
        let token = try await agent.call(id: 2, "getToken", ["key": "car"])
        #expect(token["result"]?["accessToken"] == result["result"]?["accessToken"])
        // The port is closed before the answer; the state never reached the log.
        #expect(!Self.isListening(port))
        let state = try #require(url.components(separatedBy: "state=").last)
        #expect(!agent.stderr.contains(state))
        #expect(!agent.stderr.contains("code="))
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func aConnectErrorIsShownOnThePageAndAnswered() async throws {
        let agent = try AgentProcess(arguments: ["--sandbox"])
        let announced = try await Self.startConnect(agent, id: 1)
        // The sandbox's Connect refuses when asked to (the owner pressing "Deny").
        let page = try FakeBrowser.visit(try #require(announced["url"]?.stringValue) + "&fake_error=access_denied")
        #expect(page.status == 400)
        #expect(page.body.contains("Not connected: Smartcar Connect returned access_denied: User denied access"))
        let answer = try await agent.response(id: 1)
        #expect(answer["error"]?["data"]?["kind"] == "connectError", "\(answer)")
        #expect(!Self.isListening(try Self.port(of: announced["redirectURI"])))
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func aPortAlreadyInUseIsRefused() async throws {
        let holder = try FakeBrowser.listening()
        defer { close(holder.fd) }
        let agent = try AgentProcess(arguments: ["--sandbox"])
        let answer = try await agent.call(
            id: 1, "connect", ["key": "car", "redirectURI": .string("http://localhost:\(holder.port)/callback")])
        #expect(answer["error"]?["data"]?["kind"] == "portUnavailable", "\(answer)")
        #expect(
            answer["error"]?["message"]?.stringValue?.hasPrefix(
                "connect cannot listen on 127.0.0.1:\(holder.port) for the redirect (Address already in use)") == true)
        #expect(agent.inbox.notifications.isEmpty)
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }

    /// One connect per agent: a second is refused whatever its port; once the first is cancelled, the port
    /// is closed and the next connect goes through.
    @Test func aSecondConcurrentConnectIsRefusedUntilTheFirstEnds() async throws {
        let agent = try AgentProcess(arguments: ["--sandbox"])
        let first = try await Self.startConnect(agent, id: 1)
        let firstPort = try Self.port(of: first["redirectURI"])
        for (id, uri) in [(2, Self.freePort), (3, "http://localhost:\(firstPort)/callback")] {
            let refused = try await agent.call(id: id, "connect", ["key": "other", "redirectURI": .string(uri)])
            #expect(refused["error"]?["data"]?["kind"] == "invalidRequest", "\(refused)")
            #expect(
                refused["error"]?["message"]
                    == .string(
                        "another connect is waiting for its redirect on http://127.0.0.1:\(firstPort)/callback; an "
                            + "agent runs one connect at a time: cancel it ($/cancelRequest) or let it end"))
        }
        agent.sendLine(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#)
        #expect(try await agent.response(id: 1)["error"]?["code"] == -32800)
        // Read after the cancellation, the next connect waits for the first one's port, and may take it.
        let next = try await Self.startConnect(
            agent, id: 4, redirectURI: "http://127.0.0.1:\(firstPort)/callback")
        _ = try FakeBrowser.visit(try #require(next["url"]?.stringValue))
        #expect(try await agent.response(id: 4)["result"]?["key"] == "car")
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }

    @Test func closingTheInputEndsAWaitingConnect() async throws {
        let agent = try AgentProcess(arguments: ["--sandbox"])
        let announced = try await Self.startConnect(agent, id: 1)
        agent.closeInput()
        let answer = try await agent.response(id: 1)
        #expect(answer["error"]?["code"] == -32800, "\(answer)")
        #expect(
            answer["error"]?["message"] == "connect cancelled: the client closed its input before the redirect")
        #expect(try await agent.waitForExit() == 0)
        #expect(!Self.isListening(try Self.port(of: announced["redirectURI"])))
    }

    /// A failure after the port is bound (no client id: no Connect URL) closes the port and answers.
    @Test func aFailureBeforeTheWaitClosesThePort() async throws {
        let holder = try FakeBrowser.listening()
        close(holder.fd)  // a port that was free a moment ago
        let agent = try AgentProcess()
        let answer = try await agent.call(
            id: 1, "connect", ["key": "car", "redirectURI": .string("http://127.0.0.1:\(holder.port)/callback")])
        #expect(answer["error"]?["data"]?["kind"] == "configurationError", "\(answer)")
        #expect(!Self.isListening(holder.port))
        // Without a redirect URI at all, connect says where to give one.
        let none = try await agent.call(id: 2, "connect", ["key": "car"])
        #expect(
            none["error"]?["message"]?.stringValue?.hasSuffix("pass 'redirectURI' or set SMARTCAR_REDIRECT_URI") == true
        )
        #expect(agent.inbox.notifications.isEmpty)
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }

    @Test(arguments: [
        "https://127.0.0.1:8000/callback", "http://example.com:8000/callback", "http://localhost/callback",
        "http://localhost:65536/callback", "http://[::1]:8000/callback", "http://user@localhost:8000/callback",
        "http://127.0.0.1:8000/callback#top", "localhost:8000", "",
    ])
    func aRedirectURIThatIsNotLoopbackIsRefused(_ uri: String) async throws {
        let agent = try AgentProcess(arguments: ["--sandbox"])
        let answer = try await agent.call(id: 1, "connect", ["redirectURI": .string(uri)])
        #expect(answer["error"]?["data"]?["kind"] == "invalidParams", "\(answer)")
        #expect(answer["error"]?["message"]?.stringValue?.contains("redirect URI") == true, "\(answer)")
        #expect(agent.inbox.notifications.isEmpty)
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }
}
