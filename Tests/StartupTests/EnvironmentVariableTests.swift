import AgentSupport
import AgentTestSupport
import AuthAgent
import Foundation
import Testing

@testable import smartcar_auth_agent

/// The variable `--help` shows with an option is the one the launcher reads: giving the value either way
/// starts the agent with the same configuration and store.
@Suite struct EnvironmentVariableTests {
    /// A valid value for each option that has a variable; a new one must be added here. `keyFile` is a private
    /// file holding a store key.
    static func samples(keyFile: String) -> [String: String] {
        [
            "--client-id": "id-from-a-test", "--redirect-uri": "https://example.com/callback", "--mode": "simulated",
            "--store": "memory", "--store-schema": "another_schema", "--store-key-file": keyFile,
            "--refresh-ahead": "120",
        ]
    }

    @Test func theVariableAndTheOptionSetTheSameThing() async throws {
        let keyFolder = try TemporaryFolder("startup-key")
        let keyFile = keyFolder.file("store.key")
        #expect(
            FileManager.default.createFile(
                atPath: keyFile, contents: Data(String(repeating: "ab", count: 32).utf8),
                attributes: [.posixPermissions: 0o600]))
        let samples = Self.samples(keyFile: keyFile)
        let options = CommandLineOption.table.filter { $0.environmentVariable != nil }
        #expect(Set(options.flatMap(\.names)) == Set(samples.keys))
        for option in options {
            let name = try #require(option.names.first), variable = try #require(option.environmentVariable)
            let value = try #require(samples[name])
            // Every start opens a store: memory, for `--store` itself the default one in a folder of the test's, for
            // `--store-schema` a PostgreSQL one.
            let folder = FileManager.default.temporaryDirectory
                .appendingPathComponent("startup-\(UInt64.random(in: 0...UInt64.max))")
            defer { try? FileManager.default.removeItem(at: folder) }
            let base =
                switch name {
                case "--store": ["XDG_STATE_HOME": folder.path]
                case "--store-schema":
                    ["SMARTCAR_AUTH_STORE": try await PostgresCluster.shared.createDatabase("startup")]
                default: ["SMARTCAR_AUTH_STORE": "memory"]
                }
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
            #expect(fromFlag.storeSealing == fromVariable.storeSealing, "\(name)")
            #expect(fromFlag.settings == fromVariable.settings, "\(name)")
            let changedSomething =
                fromFlag.configuration != unset.configuration || fromFlag.settings != unset.settings
                || fromFlag.storeDescription != unset.storeDescription || fromFlag.storeSealing != unset.storeSealing
            #expect(changedSomething, "\(name) \(value) must differ from the default")
        }
    }
}
