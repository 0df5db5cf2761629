import Foundation

/// `clients/shell/smartcar-auth token KEY` end to end, as a script runs it: bash starts, spawns the agent
/// on the store, sends one request, closes its stdin, prints the token. From spawn to exit.
extension Bench {
    func runShellClient(into report: inout Report) throws {
        progress("shell client: \(options.shellRuns) runs of smartcar-auth token \(Bench.cachedKey)")
        let recipe = sidecars.shellClient(["token", Bench.cachedKey], store: fixtures.agentOne, fake: fast)
        var samples: [Double] = []
        for run in 0..<(2 + options.shellRuns) {
            let started = Monotonic.now()
            let child = try recipe.start(stderrPath: logPath("shell-client"))
            child.closeInput()
            var output = ""
            while let line = child.output.nextLineString() { output += line }
            let status = child.finish()
            let ended = Monotonic.now()
            guard status == 0, !output.isEmpty else {
                throw Clients.Failure(description: "smartcar-auth token failed (exit \(status))\(child.stderrTail)")
            }
            if run >= 2 { samples.append(Monotonic.milliseconds(from: started, to: ended)) }
        }
        report.add(
            Row(
                id: "shellClient.token", measure: "shell client `smartcar-auth token KEY`, end to end (ms, median)",
                unit: "ms", agent: Statistics(samples).median, peerNote: "n/a"))
    }
}
