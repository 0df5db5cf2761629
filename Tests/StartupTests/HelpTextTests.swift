import AgentSupport
import Foundation
import Testing

@testable import smartcar_auth_agent

/// `--help` is made from the option table: one block per listed option, with its variable and default; then the
/// exit codes, which the README lists too.
@Suite struct HelpTextTests {
    /// The block `--help` gives `option`: its usage line and the indented lines after it.
    func helpLines(of option: CommandLineOption) throws -> [Substring] {
        let lines = HelpText.text.split(separator: "\n", omittingEmptySubsequences: false)
        let first = try #require(
            lines.firstIndex { $0 == "  " + HelpText.usage(of: option) }, "\(option.names) is not in --help")
        return [lines[first]] + lines[(first + 1)...].prefix { $0.hasPrefix("      ") }
    }

    @Test func everyListedOptionHasABlockWithItsVariableAndDefault() throws {
        let listed = CommandLineOption.table.filter { $0.help != nil }
        #expect(listed.count == CommandLineOption.table.count - 1, "only --client-secret is left out")
        for option in listed {
            let block = try helpLines(of: option)
            let text = block.joined(separator: "\n")
            #expect(block.count >= 2, "\(text)")
            if let variable = option.environmentVariable {
                #expect(block.contains("      env: \(variable)"), "\(text)")
            }
            if case .value = option.effect {
                #expect(block.last == "      default: \(option.defaultValue ?? "none")", "\(text)")
            }
            for line in block { #expect(line.count <= 100, "\(line)") }
        }
        for name in ["--mode", "--redirect-uri", "--store"] {
            let option = try #require(CommandLineOption.table.first { $0.names == [name] })
            #expect(try helpLines(of: option).contains { $0.hasPrefix("      default: ") }, "\(name)")
        }
        #expect(!HelpText.text.contains("--client-secret "))
    }

    @Test func theExitCodesAreListedInHelpAndInTheReadme() throws {
        let help = try #require(HelpText.text.components(separatedBy: "\nExit codes:\n").last)
        let readme = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../../README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "\n## Exit codes\n").dropFirst().first)
            .components(separatedBy: "\n## ")[0]
        let helpWords = help.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for (code, meaning) in ExitCodes.table {
            #expect(help.contains("\n  " + code + " ") || help.hasPrefix("  " + code + " "), "\(code)")
            #expect(helpWords.contains(meaning), "\(code)")
            #expect(section.contains("| \(code) | \(meaning) |"), "README lacks exit code \(code)")
        }
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
