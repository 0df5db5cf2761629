@testable import AuthAgent
import Testing

@Suite struct CommandLineOptionsTests {
    @Test func defaultsAndFlags() throws {
        #expect(try CommandLineOptions(parsing: []) == CommandLineOptions())
        let options = try CommandLineOptions(parsing: ["--store", "memory", "--log-level=debug", "--lease-seconds", "5", "--sandbox"])
        #expect(options.store == "memory")
        #expect(options.logLevel == .debug)
        #expect(options.leaseSeconds == 5)
        #expect(options.sandbox)
    }

    @Test func recordingFlagsAndWhatAReplayNeeds() throws {
        let options = try CommandLineOptions(parsing: ["--record", "s.transcript", "--store-busy-timeout", "0.2", "--allow-clock-control", "--request-timeout", "1.5"])
        #expect(options.record == "s.transcript")
        #expect(options.storeBusyTimeoutSeconds == 0.2)
        #expect(options.replayArguments == ["--allow-clock-control", "--request-timeout", "1.5"])
        #expect(CommandLineOptions().replayArguments == [])
    }

    @Test func theSecretIsNeverAFlag() {
        #expect(throws: CommandLineError.self) { try CommandLineOptions(parsing: ["--client-secret", "s3cret"]) }
        do {
            _ = try CommandLineOptions(parsing: ["--client-secret", "s3cret"])
        } catch {
            #expect(!error.description.contains("s3cret"))
            #expect(error.description.contains("SMARTCAR_CLIENT_SECRET"))
        }
    }

    @Test(arguments: [["--log-level", "loud"], ["--lease-seconds", "0"], ["--store"], ["--bogus"], ["--max-upstream-concurrency", "x"]])
    func badArgumentsSayWhatIsWrong(arguments: [String]) {
        #expect(throws: CommandLineError.self) { try CommandLineOptions(parsing: arguments) }
    }
}
