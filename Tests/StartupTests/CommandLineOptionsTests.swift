import Testing

@testable import smartcar_auth_agent

@Suite struct CommandLineOptionsTests {
    @Test func defaultsAndFlags() throws {
        #expect(try CommandLineOptions(parsing: []) == CommandLineOptions())
        let options = try CommandLineOptions(
            parsing: ["--store", "memory", "--log-level=debug", "--lease-seconds", "5", "--sandbox"])
        #expect(options.store == "memory")
        #expect(options.logLevel == .debug)
        #expect(options.agent.leaseSeconds == 5)
        #expect(options.sandbox)
    }

    @Test func theAgentsSettingsComeFromTheirFlags() throws {
        let options = try CommandLineOptions(parsing: [
            "--max-upstream-concurrency", "4", "--state-ttl-seconds=60",
            "--lease-seconds", "2.5", "--refresh-window-days", "0",
        ])
        #expect(options.agent.maxUpstreamConcurrency == 4)
        #expect(options.agent.stateTTLSeconds == 60)
        #expect(options.agent.leaseSeconds == 2.5)
        #expect(options.agent.refreshWindowDays == 0)
    }

    @Test func recordingFlagsAndWhatAReplayNeeds() throws {
        let options = try CommandLineOptions(parsing: [
            "--record", "s.transcript", "--store-busy-timeout", "0.2",
            "--allow-clock-control", "--request-timeout", "1.5",
        ])
        #expect(options.record == "s.transcript")
        #expect(options.storeBusyTimeoutSeconds == 0.2)
        #expect(options.replayArguments == ["--allow-clock-control", "--request-timeout", "1.5"])
        #expect(CommandLineOptions().replayArguments == [])
        let all = try CommandLineOptions(parsing: [
            "--max-message-bytes", "2048", "--state-ttl-seconds", "60",
            "--lease-seconds", "3", "--request-timeout", "2",
            "--allow-clock-control", "--log-level", "debug",
        ])
        #expect(
            all.replayArguments == [
                "--allow-clock-control", "--request-timeout", "2", "--lease-seconds", "3",
                "--state-ttl-seconds", "60", "--max-message-bytes", "2048",
            ])
    }

    @Test func theSecretIsNeverAFlag() {
        for arguments in [["--client-secret", "s3cret"], ["--client-secret=s3cret"]] {
            #expect(throws: CommandLineError.self) { try CommandLineOptions(parsing: arguments) }
            do {
                _ = try CommandLineOptions(parsing: arguments)
            } catch {
                #expect(!error.description.contains("s3cret"))
                #expect(error.description.contains("SMARTCAR_CLIENT_SECRET"))
            }
        }
    }

    @Test(arguments: [
        ["--log-level", "loud"], ["--lease-seconds", "0"], ["--store"], ["--bogus"],
        ["--max-upstream-concurrency", "x"],
    ])
    func badArgumentsSayWhatIsWrong(arguments: [String]) {
        #expect(throws: CommandLineError.self) { try CommandLineOptions(parsing: arguments) }
    }

    @Test func theMessagesOfBadArguments() {
        let expected: [([String], String)] = [
            (["--bogus"], "unknown argument '--bogus' (see --help)"),
            (["--sandbox=yes"], "unknown argument 'yes' (see --help)"),
            (["--store"], "--store needs a value"),
            (["--lease-seconds", "0"], "--lease-seconds takes a number from 1 to 300, not '0'"),
            (["--request-timeout=x"], "--request-timeout takes a number from 0.1 to 600, not 'x'"),
            (
                ["--log-level", "loud"],
                "--log-level takes one of trace, debug, info, notice, warning, error, not 'loud'"
            ),
        ]
        for (arguments, message) in expected {
            #expect(throws: CommandLineError(message)) { try CommandLineOptions(parsing: arguments) }
        }
    }
}
