import AgentTestSupport
import FakeSmartcar
import Foundation

/// Waiting on Smartcar: refreshes held by a stalled upstream until the request timeout. The figure that matters
/// is the CPU the agent burns meanwhile (issue 12 asks for under 2% of a core), printed beside the wall time.
extension Bench {
    func runStall(into report: inout Report) throws {
        let refreshes = 32
        let timeout = options.quick ? 5.0 : 15.0
        progress("upstream stall: \(refreshes) refreshes held by Smartcar until --request-timeout \(timeout) s")
        let child = try sidecars.agent(
            store: sidecars.work + "/stall.sqlite3", fake: fast, extraArguments: ["--request-timeout", "\(timeout)"]
        )
        .start(stderrPath: logPath("agent-stall"))
        defer { child.finish() }
        let expired = StoreFixtures.rfc3339(Date().addingTimeInterval(-60))
        for index in 0..<refreshes {
            let pair = fast.mintTokens(userID: "stall-\(index)")
            let stored = try child.call(
                Requests.storeToken(
                    id: index, key: "stall-\(index)", accessToken: pair.accessToken, refreshToken: pair.refreshToken,
                    expiresAt: expired))
            guard Replies.isResult(stored) else {
                throw Clients.Failure(description: "agent refused storeToken: \(stored.prefix(300))")
            }
        }
        // Each key's first refresh stalls; the agent's resend of it (a lost answer) is then answered.
        fast.inject(.stall, on: .token, times: refreshes)
        defer { fast.reset() }
        let cpuBefore = child.cpuSeconds()
        let batch = RequestBatch(count: refreshes) { Requests.getToken(id: 1000 + $0, key: "stall-\($0)") }
        let (milliseconds, replies) = try Clients.burst(child, batch)
        guard let cpuBefore, let cpuAfter = child.cpuSeconds() else {
            throw Clients.Failure(description: "the agent's CPU time could not be read from /proc")
        }
        let cpu = cpuAfter - cpuBefore, wall = milliseconds / 1000
        let share = cpu / wall
        report.add(
            Row(
                id: "stall.cpuSeconds",
                measure: "upstream stall: agent CPU while \(refreshes) refreshes wait \(timeout) s on Smartcar (s)",
                unit: "s", agent: cpu, ratio: String(format: "%.1f%% of a core", share * 100),
                target: "< 2% of a core", verdict: share < 0.02 ? .met : .missed))
        report.add(
            Row(
                id: "stall.wallSeconds", measure: "upstream stall: wall time until every refresh was answered (s)",
                unit: "s", agent: wall))
        report.add(
            Row(
                id: "stall.errors", measure: "upstream stall: error replies (each stalled refresh is resent)",
                unit: "count", agent: Double(replies.count - replies.filter(Replies.isResult).count), target: "0"))
    }
}
