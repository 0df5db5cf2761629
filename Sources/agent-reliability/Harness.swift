import FakeSmartcar
import Foundation
import Synchronization
import TokenStore

/// What every suite is given: the mode, the seed, and where the agent binary is.
struct Harness {
    /// Long mode runs the figures (100,000 fuzz inputs, 1,000 kills, a 60 s race with 8 processes).
    var long = false
    var seed: UInt64 = 0x5EED_2026
    var agentBinary: String

    /// `smartcar-auth-agent` in the products folder this executable was built into.
    static func defaultAgentBinary() -> String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("smartcar-auth-agent").path
    }

    /// Starts the agent with `arguments`, pointed at `fake` (if any) with its credentials.
    func agent(_ arguments: [String], fake: FakeSmartcar?, environment extra: [String: String] = [:], keepRawOutput: Bool = false) throws -> AgentProcess {
        var environment = fake?.agentEnvironment ?? [:]
        environment.merge(extra) { _, new in new }
        return try AgentProcess(binary: agentBinary, arguments: arguments, environment: environment, keepRawOutput: keepRawOutput)
    }

    /// The rows of the store at `path` by key, opened strictly (a corrupt store throws), as another agent
    /// would open it.
    nonisolated static func storedRows(_ path: String) async throws -> [String: StoredToken] {
        let store = try TokenStore.open(.file(path), strict: true)
        let rows = try await store.list()
        await store.close()
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.key, $0) })
    }
}

/// A private temporary folder (0700, as the store requires), removed when the value goes away.
final class TemporaryFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("agent-reliability-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

extension FakeSmartcar {
    /// The environment that points an agent at this fake with its credentials.
    var agentEnvironment: [String: String] {
        let origin = self.origin.absoluteString
        return [
            "SMARTCAR_CLIENT_ID": options.clientID, "SMARTCAR_CLIENT_SECRET": options.clientSecret,
            "SMARTCAR_REDIRECT_URI": FakeSmartcar.redirectURI,
            "SMARTCAR_CONNECT_ORIGIN": origin, "SMARTCAR_AUTH_ORIGIN": origin, "SMARTCAR_IAM_ORIGIN": origin, "SMARTCAR_API_ORIGIN": origin,
        ]
    }

    static let redirectURI = "http://localhost:8000/callback"
}

/// Counts the fake's answers per endpoint and status, from its log lines ("POST /oauth/token [token] -> 400",
/// "-> 500 (fault)"); injected answers are counted apart ("500 fault"), so a real refusal is never confused
/// with one a suite asked for.
final class UpstreamTally: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// For `FakeSmartcar.Options.log`.
    var sink: @Sendable (String) -> Void {
        { [self] line in
            guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]"), let arrow = line.range(of: "-> ") else { return }
            let endpoint = line[line.index(after: open)..<close]
            let status = line[arrow.upperBound...].prefix { $0 != " " && $0 != "," }
            let injected = line.hasSuffix("(fault)") ? " fault" : ""
            self.counts.withLock { $0["\(endpoint) \(status)\(injected)", default: 0] += 1 }
        }
    }

    /// Answers of `endpoint` with `status` ("400", "200"; injected: "500 fault", "stalled fault", "dropped fault").
    func count(_ endpoint: String, _ status: String) -> Int { counts.withLock { $0["\(endpoint) \(status)"] ?? 0 } }
    var all: [String: Int] { counts.withLock { $0 } }
}
