import Foundation
import WireFormats

/// One request as the fake received it, so tests can assert what a client actually sent.
package struct RecordedRequest: Sendable, Codable, Equatable {
    package var method: String
    /// The path, still percent-encoded, without the query.
    package var path: String
    /// Decoded query parameters (`+` is a space); for a repeated name the last value wins.
    package var query: [String: String]
    /// Header fields, names lower-cased; repeated fields joined with ", ".
    package var headers: [String: String]
    /// The raw body as text (invalid UTF-8 replaced).
    package var body: String
    /// The decoded body when it was sent as `application/x-www-form-urlencoded`, else empty.
    package var form: [String: String]
    /// Which Smartcar endpoint the path names; nil for any other path.
    package var endpoint: Endpoint?
    /// The `SC-Request-Id` the fake gave this request (also sent when the answer is a fault).
    package var requestID: String

    init(_ request: HTTPServerRequest, endpoint: Endpoint?, requestID: String) {
        method = request.method
        path = request.path
        query = FormCoding.decodeDictionary(request.rawQuery)
        var headers: [String: String] = [:]
        for (name, _) in request.headers where headers[name] == nil { headers[name] = request.header(name) }
        self.headers = headers
        body = String(decoding: request.body, as: UTF8.self)
        form = request.isFormEncoded ? FormCoding.decodeDictionary(body) : [:]
        self.endpoint = endpoint
        self.requestID = requestID
    }
}

extension HTTPServerRequest {
    var isFormEncoded: Bool {
        header("content-type")?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
            == "application/x-www-form-urlencoded"
    }
}
