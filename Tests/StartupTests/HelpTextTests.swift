import AgentSupport
import Testing

@testable import smartcar_auth_agent

/// `--help` is made from the option table: every listed option shows up with its variable and default.
@Suite struct HelpTextTests {
    /// The lines `--help` gives `option`: its first line and the indented ones after it.
    func helpLines(of option: CommandLineOption) throws -> String {
        let lines = HelpText.text.split(separator: "\n", omittingEmptySubsequences: false)
        let first = try #require(
            lines.firstIndex { $0.hasPrefix("  " + HelpText.usage(of: option) + " ") },
            "\(option.names) is not in --help")
        let continued = lines[(first + 1)...].prefix { $0.hasPrefix("   ") }
        return ([lines[first]] + continued).joined(separator: "\n")
    }

    @Test func everyListedOptionAppearsWithItsVariableAndDefault() throws {
        let listed = CommandLineOption.table.filter { $0.help != nil }
        #expect(listed.count == CommandLineOption.table.count - 1, "only --client-secret is left out")
        for option in listed {
            let text = try helpLines(of: option)
            if let variable = option.environmentVariable { #expect(text.contains("env \(variable)"), "\(text)") }
            if let defaultValue = option.defaultValue { #expect(text.contains("default \(defaultValue)"), "\(text)") }
            for line in text.split(separator: "\n") { #expect(line.count <= 100, "\(line)") }
        }
        #expect(!HelpText.text.contains("--client-secret "))
    }

    @Test func everyShownDefaultIsTheDefault() throws {
        let options = CommandLineOption.table.filter { $0.defaultValue != nil && $0.environmentVariable == nil }
        #expect(options.count >= 8)
        for option in options {
            let given = try CommandLineOptions(parsing: option.names + [option.defaultValue!])
            #expect(given == CommandLineOptions(), "\(option.names)")
        }
    }

    @Test func theIntroductionNamesTheVersionAndTheVariablesWithoutAnOption() {
        #expect(HelpText.text.hasPrefix("smartcar-auth-agent \(AgentVersion.current): "))
        for variable in [
            "SMARTCAR_CLIENT_SECRET", "SMARTCAR_CONNECT_ORIGIN", "SMARTCAR_AUTH_ORIGIN",
            "SMARTCAR_IAM_ORIGIN", "SMARTCAR_API_ORIGIN",
        ] {
            #expect(HelpText.text.contains(variable))
        }
    }
}
