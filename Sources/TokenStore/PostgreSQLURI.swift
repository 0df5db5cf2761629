/// Connection URIs as they may appear in messages: without their password.
enum PostgreSQLURI {
    /// `uri` with the password of its user part and any `password=` parameter removed.
    static func withoutPassword(_ uri: String) -> String {
        guard let schemeEnd = uri.range(of: "://") else { return uri }
        let rest = uri[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = String(rest[..<authorityEnd])
        if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
            authority.removeSubrange(colon..<at)
        }
        var tail = String(rest[authorityEnd...])
        if let question = tail.firstIndex(of: "?") {
            let parameters = tail[tail.index(after: question)...].split(
                separator: "&", omittingEmptySubsequences: false)
            let kept = parameters.filter { !$0.lowercased().hasPrefix("password=") }
            tail = String(tail[..<question]) + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&"))
        }
        return String(uri[..<schemeEnd.upperBound]) + authority + tail
    }
}
