import FakeSmartcar
import WireFormats

/// JSON-RPC messages as a client writes them: compact JSON text, one line each, every object's keys sorted
/// (so `id` comes first: the fuzz suite cuts requests short and knows whether the id survived).
package enum Requests {
    /// A request with `id` as one line of text (without its newline).
    package static func request(id: JSONValue, _ method: String, _ params: JSONValue? = nil) -> String {
        recordTokens(method, params)
        var message: [String: JSONValue] = ["jsonrpc": "2.0", "id": id, "method": .string(method)]
        message["params"] = params
        return sortingKeys(.object(message)).compactText
    }

    package static func request(id: Int, _ method: String, _ params: JSONValue? = nil) -> String {
        request(id: .int(Int64(id)), method, params)
    }

    /// The token values a test imports with `storeToken`, for the run's scan of its stores (`EvidenceValues`).
    package static func recordTokens(_ method: String, _ params: JSONValue?) {
        guard method == "storeToken" else { return }
        EvidenceValues.record(["accessToken", "refreshToken"].compactMap { params?[$0]?.stringValue })
    }

    package static func notification(_ method: String, _ params: JSONValue? = nil) -> String {
        var message: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method)]
        message["params"] = params
        return sortingKeys(.object(message)).compactText
    }

    private static func sortingKeys(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            .object(JSONObject(members.sorted { $0.key < $1.key }.map { ($0.key, sortingKeys($0.value)) }))
        case .array(let items):
            .array(items.map(sortingKeys))
        default:
            value
        }
    }

    /// `Content-Length` framing of `body`.
    package static func framed(_ body: String) -> [UInt8] {
        Array("Content-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
    }

    // The bench's requests, written out directly so that large batches build fast and byte for byte the same.

    package static func getToken(id: Int, key: String, forceRefresh: Bool = false) -> String {
        let force = forceRefresh ? #","forceRefresh":true"# : ""
        return #"{"jsonrpc":"2.0","id":\#(id),"method":"getToken","params":{"key":\#(JSONText.quoted(key))\#(force)}}"#
    }

    package static func storeToken(
        id: Int, key: String, accessToken: String, refreshToken: String,
        expiresAt: String
    ) -> String {
        EvidenceValues.record(accessToken, refreshToken)
        return #"{"jsonrpc":"2.0","id":\#(id),"method":"storeToken","params":{"key":\#(JSONText.quoted(key)),"#
            + #""accessToken":\#(JSONText.quoted(accessToken)),"refreshToken":\#(JSONText.quoted(refreshToken)),"#
            + #""expiresAt":\#(JSONText.quoted(expiresAt))}}"#
    }

    package static func status(id: Int) -> String { #"{"jsonrpc":"2.0","id":\#(id),"method":"status"}"# }
}

extension JSONValue {
    /// `error.code` of a response, if it is an error.
    package var errorCode: Int64? { self["error"]?["code"]?.intValue }
    /// `error.data.kind` of a response, if it is an error.
    package var errorKind: String? { self["error"]?["data"]?["kind"]?.stringValue }
}
