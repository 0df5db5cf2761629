import AgentSupport

/// `--help`: a fixed introduction, then every listed option of `CommandLineOption.table` with its variable and default.
enum HelpText {
    static var text: String {
        let options = CommandLineOption.table.compactMap { option in option.help.map { (option, $0) } }
        let width = options.map { usage(of: $0.0).count }.max()! + 1
        return introduction
            + options.map { option, help in
                wrap(
                    help.split(separator: " ").map(String.init) + notes(of: option),
                    first: "  " + usage(of: option).padding(width), indent: width + 2)
            }.joined(separator: "\n")
    }

    /// `--store PATH|memory`, `-h, --help`.
    static func usage(of option: CommandLineOption) -> String {
        let names = option.names.joined(separator: ", ")
        guard case .value(let valueName, _) = option.effect else { return names }
        return names + " " + valueName
    }

    /// `(env SMARTCAR_MODE,` and `default live)`: each kept whole when the help wraps.
    static func notes(of option: CommandLineOption) -> [String] {
        let notes = [option.environmentVariable.map { "env \($0)" }, option.defaultValue.map { "default \($0)" }]
            .compactMap { $0 }
        guard !notes.isEmpty else { return [] }
        return notes.indices.map { index in
            (index == 0 ? "(" : "") + notes[index] + (index == notes.count - 1 ? ")" : ",")
        }
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

    /// Lines at most `lineWidth` long (a longer word keeps a line of its own), the first starting with `first`,
    /// the rest indented to the same column.
    private static func wrap(_ words: [String], first: String, indent: Int) -> String {
        let lineWidth = 100
        var lines: [String] = []
        var line = first
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
