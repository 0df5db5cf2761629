/// A redirect URI `connect` can listen for: `http://localhost:PORT/PATH` or `http://127.0.0.1:PORT/PATH`
/// (port 0: any free port, which the listener picks).
struct LoopbackRedirectURI: Sendable, Equatable {
    /// As written (`localhost` or `127.0.0.1`): the redirect URI sent to Connect keeps it.
    var host: String
    var port: UInt16
    /// The path the redirect comes to, percent-encoded as written (`/` when empty).
    var path: String
    /// Whatever followed the path (`?...`), kept in the URI sent to Connect.
    var rest: String

    init(_ text: String) throws(AgentError) {
        let why =
            "invalid params: connect listens on this machine for the redirect, so the redirect URI must be "
            + "http://localhost:PORT/PATH or http://127.0.0.1:PORT/PATH (port 0 picks a free one), not '\(text)'"
        guard text.lowercased().hasPrefix("http://") else { throw .invalidParams(why) }
        let afterScheme = text.dropFirst("http://".count)
        let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        let remainder = afterScheme[authorityEnd...]
        guard let colon = authority.lastIndex(of: ":"), !remainder.contains("#") else { throw .invalidParams(why) }
        let host = String(authority[..<colon])
        let portText = authority[authority.index(after: colon)...]
        guard ["localhost", "127.0.0.1"].contains(host.lowercased()) else { throw .invalidParams(why) }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(portText), port <= 65535
        else {
            throw .invalidParams(
                "invalid params: the redirect URI '\(text)' needs a port from 0 to 65535 after the host")
        }
        self.host = host
        self.port = UInt16(port)
        let queryStart = remainder.firstIndex(of: "?") ?? remainder.endIndex
        path = remainder[..<queryStart].isEmpty ? "/" : String(remainder[..<queryStart])
        rest = String(remainder[queryStart...])
    }

    /// The redirect URI with `port` (the one bound), as sent to Connect and expected back.
    func uri(port: UInt16) -> String { "http://\(host):\(port)\(path)\(rest)" }
}
