import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import TokenStore
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Signals while a refresh is at Smartcar (issue 12, class 6). SIGHUP acts like SIGTERM: the refresh is
/// finished and answered, its tokens stored, and the agent exits with code 0. SIGUSR1, SIGUSR2, SIGALRM and
/// SIGPIPE disturb nothing: the refresh is answered and the agent serves on. Against a fake that rejects any
/// reuse of a refresh token, so a token lost at the signal shows as a dead key.
extension CrashSuite {
    static let refreshSignals: [(name: String, number: Int32, ends: Bool)] = [
        ("SIGHUP", SIGHUP, true), ("SIGUSR1", SIGUSR1, false), ("SIGUSR2", SIGUSR2, false),
        ("SIGALRM", SIGALRM, false), ("SIGPIPE", SIGPIPE, false),
    ]

    func signalsDuringRefresh(_ report: Report) async throws {
        let scene = try Scene()
        defer { scene.fake.stop() }
        var outcomes: [String: Int] = [:]
        for signal in Self.refreshSignals {
            let label = "\(signal.name) during a refresh"
            let key = "signal-\(signal.name)"
            let agent = try harness.agent(["--store", scene.store, "--request-timeout", "10"], fake: scene.fake)
            defer { agent.kill() }
            guard scene.seed(key, in: agent) else {
                report.fail("\(label): could not seed the key")
                continue
            }
            guard let id = scene.refreshInFlight(key, in: agent, delay: .milliseconds(500)) else {
                report.fail("\(label): the refresh never reached Smartcar")
                continue
            }
            agent.kill(signal.number)
            let reply = agent.response(id, timeout: .seconds(30))
            outcomes[reply?.outcome ?? "no answer", default: 0] += 1
            report.check(
                reply?.isSuccess == true,
                "\(label): the refresh was not answered with its token: \(reply.map(\.compactText) ?? "no answer")")
            if signal.ends {
                let status = agent.exitStatus(within: .seconds(30))
                report.check(
                    status == 0, "\(label): the agent exited with \(status.map(String.init) ?? "nothing"), not 0")
            } else {
                report.check(
                    agent.call("ping", "ping")?.isSuccess == true, "\(label): the agent no longer answers")
                agent.closeInput()
                report.check(agent.exitStatus() == 0, "\(label): the agent did not exit cleanly afterwards")
            }
            // The token answered is the one stored, and Smartcar honours the stored refresh token.
            let row = await scene.row(key)
            report.check(
                row != nil && row?.accessToken == reply?["result"]?["accessToken"]?.stringValue
                    && scene.fake.isLive(refreshToken: row!.refreshToken),
                "\(label): the refreshed token is not the one stored, or its refresh token is dead")
        }
        report.counts("refreshes answered under signals", outcomes)
    }
}
