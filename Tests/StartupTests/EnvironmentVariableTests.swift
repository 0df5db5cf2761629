import AgentSupport
import AuthAgent
import Foundation
import Testing

@testable import smartcar_auth_agent

/// The variable `--help` shows with an option is the one the launcher reads: giving the value either way
/// starts the agent with the same configuration and store.
@Suite struct EnvironmentVariableTests {
    /// A valid value for each option that has a variable; a new one must be added here.
    static let samples = [
        "--client-id": "id-from-a-test", "--redirect-uri": "https://example.com/callback", "--mode": "simulated",
        "--store": "memory", "--store-schema": "tenant_a",
    ]

    @Test func theVariableAndTheOptionSetTheSameThing() throws {
        let options = CommandLineOption.table.filter { $0.environmentVariable != nil }
        #expect(Set(options.flatMap(\.names)) == Set(Self.samples.keys))
        for option in options {
            let name = try #require(option.names.first), variable = try #require(option.environmentVariable)
            let value = try #require(Self.samples[name])
            if name == "--store-schema" {  // only a PostgreSQL store reads it
                func schema(_ arguments: [String], _ environment: [String: String]) throws -> String {
                    AgentLauncher.storeSchema(
                        options: try CommandLineOptions(parsing: arguments), environment: environment)
                }
                #expect(try schema([name, value], [:]) == schema([], [variable: value]))
                #expect(try schema([], [:]) != schema([name, value], [:]))
                continue
            }
            // Every start opens a store: memory, or for `--store` itself the default one in a folder of the test's.
            let folder = FileManager.default.temporaryDirectory
                .appendingPathComponent("startup-\(UInt64.random(in: 0...UInt64.max))")
            defer { try? FileManager.default.removeItem(at: folder) }
            let base = name == "--store" ? ["XDG_STATE_HOME": folder.path] : ["SMARTCAR_AUTH_STORE": "memory"]
            func start(_ arguments: [String], _ environment: [String: String]) throws -> Agent.Setup {
                try AgentLauncher.setup(
                    options: CommandLineOptions(parsing: arguments), environment: environment,
                    logger: .silent)
            }
            let fromFlag = try start([name, value], base)
            let fromVariable = try start([], base.merging([variable: value]) { $1 })
            let unset = try start([], base)
            #expect(fromFlag.configuration == fromVariable.configuration, "\(name)")
            #expect(fromFlag.storeDescription == fromVariable.storeDescription, "\(name)")
            let changedSomething =
                fromFlag.configuration != unset.configuration
                || fromFlag.storeDescription != unset.storeDescription
            #expect(changedSomething, "\(name) \(value) must differ from the default")
        }
    }
}
