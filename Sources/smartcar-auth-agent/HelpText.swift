import AgentSupport

/// `--help`: a fixed introduction, then one block per listed option of `CommandLineOption.table` (its usage, what
/// it does, its variable and its default), then the exit codes.
enum HelpText {
    static var text: String {
        let options = CommandLineOption.table.compactMap { option in option.help.map { (option, $0) } }
        return introduction
            + options.map { option, help in
                (["  " + usage(of: option), wrap(help.split(separator: " ").map(String.init), indent: 6)]
                    + notes(of: option).map { "      " + $0 }).joined(separator: "\n")
            }.joined(separator: "\n")
            + "\n\nExit codes:\n"
            + ExitCodes.table.map { code, meaning in
                wrap(meaning.split(separator: " ").map(String.init), first: "  " + code.padding(7), indent: 9)
            }.joined(separator: "\n")
    }

    /// `--store PATH|memory`, `-h, --help`.
    static func usage(of option: CommandLineOption) -> String {
        let names = option.names.joined(separator: ", ")
        guard case .value(let valueName, _) = option.effect else { return names }
        return names + " " + valueName
    }

    /// `env: SMARTCAR_MODE` (when the option has a variable) and `default: live` (`none` for a value option without
    /// one, `off` for a switch; --help and --version have neither).
    static func notes(of option: CommandLineOption) -> [String] {
        let defaultValue: String? =
            switch option.effect {
            case .value: option.defaultValue ?? "none"
            case .toggle: option.names.contains { $0 == "--help" || $0 == "--version" } ? nil : "off"
            }
        return [option.environmentVariable.map { "env: \($0)" }, defaultValue.map { "default: \($0)" }]
            .compactMap { $0 }
    }

    private static let introduction = """
        smartcar-auth-agent \(AgentVersion.current): owns Smartcar OAuth for other programs.
        Speaks JSON-RPC 2.0 on stdin/stdout (Content-Length framing or one JSON message per line);
        logs go to stderr. The protocol is described in Protocol/README.md.

        Usage: smartcar-auth-agent [options]

        Configuration comes from the environment and the options; an option overrides the environment
        variable shown with it. The client secret comes only from SMARTCAR_CLIENT_SECRET or
        --client-secret-file, the endpoint origins only from SMARTCAR_CONNECT_ORIGIN, SMARTCAR_AUTH_ORIGIN,
        SMARTCAR_IAM_ORIGIN and SMARTCAR_API_ORIGIN.

        Options:

        """

    /// Lines at most `lineWidth` long (a longer word keeps a line of its own), the first starting with `first`
    /// (default: the indentation), the rest indented to `indent`.
    private static func wrap(_ words: [String], first: String? = nil, indent: Int) -> String {
        let lineWidth = 100
        var lines: [String] = []
        var line = first ?? "".padding(indent)
        for word in words {
            if line.count > indent, line.count + 1 + word.count > lineWidth {
                lines.append(line)
                line = "".padding(indent)
            }
            line += (line.count > indent ? " " : "") + word
        }
        return (lines + [line]).joined(separator: "\n")
    }
}

private extension String {
    /// The string followed by spaces up to `width` characters.
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
