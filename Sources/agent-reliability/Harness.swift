import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import Synchronization
import TokenStore
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What every suite is given: the mode, the seed, and where the agent binary is.
struct Harness {
    /// Long mode runs the figures (100,000 fuzz inputs, 1,000 kills, a 60 s race with 8 processes).
    var long = false
    var seed: UInt64 = 0x5EED_2026
    var agentBinary: String

    /// Starts the agent with `arguments`, pointed at `fake` (if any) with its credentials.
    func agent(
        _ arguments: [String], fake: FakeSmartcar?, environment extra: [String: String] = [:],
        keepRawOutput: Bool = false
    ) throws -> AgentProcess {
        var environment = fake?.agentEnvironment ?? [:]
        environment.merge(extra) { _, new in new }
        return try AgentProcess(
            binary: agentBinary, arguments: arguments, environment: environment, keepRawOutput: keepRawOutput)
    }

    /// The rows of `application` in the store at `path` by key, opened strictly (a corrupt store throws) with the
    /// secret its agents sealed it with, as another agent would open it.
    nonisolated static func storedRows(
        _ path: String, application: String = FakeSmartcar.Options().clientID,
        secrets: StoreSecrets = FakeSmartcar.Options().storeSecrets
    ) async throws -> [String: StoredToken] {
        let store = try SQLiteTokenStore.open(.file(path), application: application, strict: true, sealing: secrets)
        let rows = try await store.list()
        await store.close()
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.key, $0) })
    }

    /// `storedRows` for a suite that runs synchronously: blocks the caller until another thread has read them.
    nonisolated static func storedRowsNow(_ path: String) throws -> [String: StoredToken] {
        let result = Mutex<Result<[String: StoredToken], any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let rows: Result<[String: StoredToken], any Error>
            do { rows = .success(try await storedRows(path)) } catch { rows = .failure(error) }
            result.withLock { $0 = rows }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }
}

/// Counts the fake's answers per endpoint and status, from its log lines ("POST /oauth/token [token] -> 400",
/// "-> 500 (fault)"); injected answers are counted apart ("500 fault"), so a real refusal is never confused
/// with one a suite asked for.
final class UpstreamTally: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// For `FakeSmartcar.Options.log`.
    var sink: @Sendable (String) -> Void {
        { [self] line in
            guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]"),
                let arrow = line.range(of: "-> ")
            else { return }
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

extension AgentProcess {
    /// Sends one request as a line and returns its id, for a suite that collects what it is owed.
    @discardableResult
    func request(_ id: JSONValue, _ method: String, _ params: JSONValue? = nil) -> JSONValue {
        send(id: id, method, params)
        return id
    }

    /// Stores `pair` under `key` with `storeToken` (by default already expired, so the next `getToken`
    /// refreshes); true if it was stored.
    func storeGrant(
        _ key: String, _ pair: (accessToken: String, refreshToken: String),
        expiresAt: String = "2020-01-01T00:00:00Z"
    ) -> Bool {
        call(
            .string("store-\(key)"), "storeToken",
            [
                "key": .string(key), "accessToken": .string(pair.accessToken),
                "refreshToken": .string(pair.refreshToken), "expiresAt": .string(expiresAt),
            ])?.isSuccess == true
    }

    /// The exit status once the process has exited and its output was read (the negated signal number when
    /// a signal ended it); nil after `timeout`.
    func exitStatus(within timeout: Duration = .seconds(60)) -> Int32? {
        waitForExit(until: .now + timeout).map { $0.signalled ? -$0.status : $0.status }
    }

    /// The most memory the process has had resident (`VmHWM`), in MiB; nil once it is gone.
    var peakResidentMiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "").map { $0 / 1024 }
    }

    /// Copies stderr to a file that outlives this run, for a failure message: its path and last lines.
    func keepStderr() -> String {
        let kept = FileManager.default.temporaryDirectory
            .appendingPathComponent("agent-reliability-failure-\(pid).stderr").path
        try? FileManager.default.removeItem(atPath: kept)
        try? FileManager.default.copyItem(atPath: stderrPath, toPath: kept)
        return "\(kept), ending:\n    " + stderrTail(lines: 12).replacingOccurrences(of: "\n", with: "\n    ")
    }
}

extension JSONValue {
    var isSuccess: Bool { self["result"] != nil }
    /// "result" or the error kind (or code) of a response, for counting outcomes.
    var outcome: String {
        if isSuccess { return "result" }
        return errorKind ?? errorCode.map { "error \($0)" } ?? "malformed"
    }
}
