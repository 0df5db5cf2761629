/// An HTTP request target in origin form (`/path?query`), split the one way the fake Smartcar's server and the
/// agent's loopback listener both read it.
package enum RequestTarget {
    /// The path (still percent-encoded) and the query without its `?` (`""` when absent).
    package static func split(_ target: String) -> (path: String, query: String) {
        guard let mark = target.firstIndex(of: "?") else { return (target, "") }
        return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }
}
