import Foundation

/// The members of a JSON-RPC message that decide what it is, decoded without touching `params`.
struct Envelope: Decodable {
    enum Problem: Error { case invalid(String, id: RequestID?) }

    var jsonrpc: String?
    /// nil: no `id` member (a notification); `.some(.null)`: `"id": null`.
    var id: RequestID?
    var idIsInvalid = false
    var method: String?
    var methodIsInvalid = false
    var hasParams = false
    var paramsAreStructured = true
    var isResponse = false

    private enum Keys: String, CodingKey { case jsonrpc, id, method, params, result, error }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        jsonrpc = try? container.decodeIfPresent(String.self, forKey: .jsonrpc)
        if container.contains(.id) {
            if (try? container.decodeNil(forKey: .id)) == true {
                id = .null
            } else if let number = try? container.decode(Int64.self, forKey: .id) {
                id = .number(number)
            } else if let string = try? container.decode(String.self, forKey: .id) {
                id = .string(string)
            } else {
                idIsInvalid = true
            }
        }
        if container.contains(.method) {
            method = try? container.decode(String.self, forKey: .method)
            methodIsInvalid = method == nil
        }
        // `"params": null` means no params (LSP clients send it for a method without any).
        if container.contains(.params), (try? container.decodeNil(forKey: .params)) != true {
            hasParams = true
            paramsAreStructured =
                (try? container.nestedContainer(keyedBy: Keys.self, forKey: .params)) != nil
                || (try? container.nestedUnkeyedContainer(forKey: .params)) != nil
        }
        isResponse = method == nil && !methodIsInvalid && (container.contains(.result) || container.contains(.error))
    }

    /// The message as a request or notification, or why it is not one (with the id when it can be read).
    func incoming(raw: [UInt8]) throws(Problem) -> IncomingMessage {
        let replyID: RequestID? = idIsInvalid ? .null : id
        // JSONDecoder keeps one of a duplicated member silently; which one a sender meant is unknowable.
        if let names = JSONLayout.memberNames(ofObject: raw),
            let twice = ["jsonrpc", "id", "method", "params"].first(where: { name in
                names.count { $0.utf8.elementsEqual(name.utf8) } > 1
            })
        {
            throw .invalid("'\(twice)' appears more than once", id: .null)
        }
        guard jsonrpc == "2.0" else { throw .invalid(#"'jsonrpc' must be "2.0""#, id: replyID ?? .null) }
        guard !idIsInvalid else { throw .invalid("'id' must be a string, an integer or null", id: .null) }
        guard let method else {
            throw .invalid(methodIsInvalid ? "'method' must be a string" : "missing 'method'", id: replyID ?? .null)
        }
        guard paramsAreStructured else {
            throw .invalid("'params' must be an object or an array", id: replyID ?? .null)
        }
        return IncomingMessage(id: id, method: method, raw: raw, hasParams: hasParams)
    }
}
