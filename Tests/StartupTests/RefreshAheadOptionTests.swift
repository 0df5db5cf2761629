import AgentSupport
import AuthAgent
import Testing

@testable import smartcar_auth_agent

/// `--refresh-ahead SECONDS` and `SMARTCAR_AUTH_REFRESH_AHEAD`: the flag wins over the variable, both take 0 to
/// 3600 seconds, and a bad value stops the start with one line naming where it came from.
@Suite struct RefreshAheadOptionTests {
    func settings(_ arguments: [String], _ variable: String? = nil) throws -> AgentSettings {
        var environment = ["SMARTCAR_AUTH_STORE": "memory"]
        environment["SMARTCAR_AUTH_REFRESH_AHEAD"] = variable
        return try AgentLauncher.setup(
            options: CommandLineOptions(parsing: arguments), environment: environment, logger: .silent
        ).settings
    }

    @Test func theFlagWinsOverTheVariableAndZeroTurnsItOff() throws {
        #expect(try settings([]).refreshAheadSeconds == 900)
        #expect(try settings([], "120").refreshAheadSeconds == 120)
        #expect(try settings(["--refresh-ahead", "0"], "120").refreshAheadSeconds == 0)
        #expect(try settings(["--refresh-ahead=3600"]).refreshAheadSeconds == 3600)
        #expect(try settings([], "").refreshAheadSeconds == 900)
        #expect(
            try CommandLineOptions(parsing: ["--refresh-ahead", "60"]).replayArguments == ["--refresh-ahead", "60"])
    }

    @Test(arguments: ["-1", "3601", "ten", "nan"])
    func aBadValueSaysWhereItCameFrom(value: String) {
        #expect(throws: CommandLineError("--refresh-ahead takes a number of seconds from 0 to 3600, not '\(value)'")) {
            try CommandLineOptions(parsing: ["--refresh-ahead", value])
        }
        #expect(
            throws: CommandLineError(
                "SMARTCAR_AUTH_REFRESH_AHEAD takes a number of seconds from 0 to 3600, not '\(value)'")
        ) { try settings([], value) }
    }
}
