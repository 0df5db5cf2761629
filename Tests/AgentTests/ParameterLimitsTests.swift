import AgentSupport
import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Testing
import WireFormats

@testable import AuthAgent

/// Every string parameter has a maximum length in UTF-8 bytes (Protocol/README.md, "Limits"): one byte over
/// it is refused with `-32602` naming the field and the limit, and a value at the limit is never refused for
/// its length. Values are random text of 1- to 4-byte characters around each limit.
@Suite struct ParameterLimitsTests {
    /// A string parameter: its method, where the value goes in the params, the name the error gives.
    struct Field: CustomStringConvertible, Sendable {
        var method: String
        var name: String
        var limit: Int
        var params: @Sendable (String) -> JSONValue
        var description: String { "\(method).\(name)" }
    }

    static let expiresAt = "2030-01-01T00:00:00Z"
    static let fields: [Field] = [
        Field(method: "buildConnectURL", name: "state", limit: 1024) { ["state": .string($0)] },
        Field(method: "buildConnectURL", name: "redirectURI", limit: 2048) { ["redirectURI": .string($0)] },
        Field(method: "buildConnectURL", name: "make", limit: 64) { ["make": .string($0)] },
        Field(method: "buildConnectURL", name: "singleSelectVIN", limit: 64) { ["singleSelectVIN": .string($0)] },
        Field(method: "buildConnectURL", name: "user", limit: 512) { ["user": .string($0)] },
        Field(method: "buildConnectURL", name: "scope", limit: 128) { ["scope": ["read_vin", .string($0)]] },
        Field(method: "buildConnectURL", name: "flags.country", limit: 512) { ["flags": ["country": .string($0)]] },
        Field(method: "handleRedirect", name: "url", limit: 8192) { value in
            ["url": .string("http://localhost:8000/callback?state=s&code=c&pad=" + value)]
        },
        Field(method: "exchangeCode", name: "code", limit: 2048) { ["code": .string($0), "key": "k"] },
        Field(method: "exchangeCode", name: "redirectURI", limit: 2048) {
            ["code": "c", "key": "k", "redirectURI": .string($0)]
        },
        Field(method: "storeToken", name: "accessToken", limit: 8192) {
            ["key": "k", "accessToken": .string($0), "refreshToken": "r", "expiresAt": .string(expiresAt)]
        },
        Field(method: "storeToken", name: "refreshToken", limit: 8192) {
            ["key": "k", "accessToken": "a", "refreshToken": .string($0), "expiresAt": .string(expiresAt)]
        },
        Field(method: "storeToken", name: "scope", limit: 4096) {
            [
                "key": "k", "accessToken": "a", "refreshToken": "r", "expiresAt": .string(expiresAt),
                "scope": .string($0),
            ]
        },
        Field(method: "storeToken", name: "expiresAt", limit: 64) {
            ["key": "k", "accessToken": "a", "refreshToken": "r", "expiresAt": .string($0)]
        },
        Field(method: "storeToken", name: "refreshExpiresAt", limit: 64) {
            [
                "key": "k", "accessToken": "a", "refreshToken": "r", "expiresAt": .string(expiresAt),
                "refreshExpiresAt": .string($0),
            ]
        },
        Field(method: "getToken", name: "rejectedToken", limit: 8192) { ["key": "k", "rejectedToken": .string($0)] },
        Field(method: "initialize", name: "clientInfo.name", limit: 256) { ["clientInfo": ["name": .string($0)]] },
        Field(method: "initialize", name: "clientInfo.version", limit: 256) {
            ["clientInfo": ["name": "n", "version": .string($0)]]
        },
    ]

    /// Random text of exactly `bytes` UTF-8 bytes, of 1- to 4-byte characters.
    static func text(bytes: Int, using random: inout SeededGenerator) -> String {
        var scalars = String.UnicodeScalarView()
        var count = 0
        while count < bytes {
            let width = Int.random(in: 1...min(4, bytes - count), using: &random)
            let ranges: [ClosedRange<UInt32>] = [0x61...0x7A, 0xE0...0x24F, 0x4E00...0x9FFF, 0x1F600...0x1F64F]
            scalars.append(Unicode.Scalar(UInt32.random(in: ranges[width - 1], using: &random))!)
            count += width
        }
        return String(scalars)
    }

    /// Whether the answer refuses `field` for its length (and says so with the limit).
    static func refusedForLength(_ field: Field, _ value: String, agent: InProcessAgent) async -> Bool {
        do {
            _ = try await agent.call(field.method, field.params(value))
            return false
        } catch let error as ResponseError {
            return error.code == ResponseError.Code.invalidParams
                && error.message.contains("'\(field.name)' is longer than \(field.limit) bytes")
        } catch {
            return false
        }
    }

    @Test(arguments: fields)
    func aStringOverItsLimitIsRefusedAndOneAtItIsNot(field: Field) async throws {
        let fake = try FakeSmartcar()
        let agent = try InProcessAgent(fake: fake)
        var random = SeededGenerator(seed: field.description.utf8.reduce(0x12D) { $0 &* 31 &+ UInt64($1) })
        let pad = field.method == "handleRedirect" ? "http://localhost:8000/callback?state=s&code=c&pad=".utf8.count : 0
        for _ in 0..<12 {
            let bytes = field.limit - pad + Int.random(in: -3...3, using: &random)
            let value = Self.text(bytes: bytes, using: &random)
            let over = value.utf8.count + pad > field.limit
            let refused = await Self.refusedForLength(field, value, agent: agent)
            #expect(refused == over, "\(field) with \(value.utf8.count + pad) bytes: refused \(refused)")
        }
        // Far over: a megabyte is refused without being kept anywhere.
        #expect(await Self.refusedForLength(field, String(repeating: "x", count: 1 << 20), agent: agent))
    }

    /// So many permissions or flags, however short, are refused too.
    @Test func tooManyScopesOrFlagsAreRefused() async throws {
        let agent = try InProcessAgent(fake: try FakeSmartcar())
        let scopes: JSONValue = .array((0...100).map { .string("p\($0)") })
        await #expect(throws: ResponseError.self) { _ = try await agent.call("buildConnectURL", ["scope": scopes]) }
        let flags: JSONValue = .object(
            Dictionary(uniqueKeysWithValues: (0...64).map { ("f\($0)", JSONValue.bool(true)) }))
        await #expect(throws: ResponseError.self) { _ = try await agent.call("buildConnectURL", ["flags": flags]) }
        _ = try await agent.call("buildConnectURL", ["scope": .array((0..<100).map { .string("p\($0)") })])
    }

    /// A token holding a control character (a NUL above all, which some stores cannot hold) is refused, whichever
    /// position it is in, and nothing is stored.
    @Test func tokensWithControlCharactersAreRefused() async throws {
        let agent = try InProcessAgent(fake: try FakeSmartcar())
        for (field, control) in [("accessToken", "\u{0}"), ("refreshToken", "\u{0}"), ("refreshToken", "\u{7}")] {
            var params: [String: JSONValue] = [
                "key": "car", "accessToken": "access-token", "refreshToken": "refresh-token",
                "expiresAt": .string(Self.expiresAt),
            ]
            params[field] = .string("token" + control + "rest")
            await #expect(throws: ResponseError.self) {
                _ = try await agent.call("storeToken", .object(JSONObject(params)))
            }
        }
        let listed = try await agent.call("listTokens")
        #expect(listed["tokens"]?.arrayValue?.isEmpty == true)
    }

    /// A key of one character that holds thousands of combining marks is refused (512 characters is not a
    /// bound on bytes).
    @Test func aKeyOfFewCharactersButManyBytesIsRefused() async throws {
        let agent = try InProcessAgent(fake: try FakeSmartcar())
        let key = "e" + String(repeating: "\u{301}", count: 100_000)
        #expect(key.count == 1)
        for method in ["getToken", "forgetToken"] {
            await #expect(throws: ResponseError.self) { _ = try await agent.call(method, ["key": .string(key)]) }
        }
    }

    /// The example through the real binary: `buildConnectURL` calls with a 1 MB `state` are refused
    /// and remembered nowhere (on the old agent each one stayed in memory).
    @Test func megabyteStatesAreRefusedAndNotKept() async throws {
        let fake = try FakeSmartcar()
        let agent = try AgentProcess(arguments: ["--store", "memory"], environment: fake.agentEnvironment)
        _ = try await agent.call(id: 1, "buildConnectURL", ["state": "warm-up"])
        let before = try #require(agent.residentKiB)
        let state = JSONValue.string(String(repeating: "s", count: 1_000_000))
        for id in 2...101 { agent.send(id: id, "buildConnectURL", ["state": state]) }
        try await agent.waitForResponses(count: 101)
        for id in 2...101 { #expect(agent.inbox.first(.int(Int64(id)))?.errorCode == -32602) }
        let after = try #require(agent.residentKiB)
        // 100 states of 1 MB kept would be 100 MB at least.
        #expect(after - before < 50 * 1024, "resident memory grew from \(before) KiB to \(after) KiB")
        let good = try await agent.call(id: 102, "buildConnectURL", ["state": "mine"])
        #expect(good["result"]?["state"] == "mine")
        agent.closeInput()
        #expect(try await agent.waitForExit() == 0)
    }
}
