import Foundation
import WireFormats

/// What Smartcar said in an error answer, whichever of its shapes it used:
/// OAuth (`{"error","error_description"}`), API v2 (`{"type","code","description","docURL","requestId",
/// "resolution","suggestedUserMessage"}`), legacy v1 (`{"error","message"}`), or not JSON at all (a proxy's
/// HTML page: only the status and the content type are kept, never the body).
///
/// Every string is passed through the call's `Redactor` first.
struct UpstreamErrorBody: Sendable, Equatable {
    var status: Int
    /// OAuth `error`, or v2 `type`.
    var error: String?
    var code: String?
    /// `error_description`, `description` or `message`; for a body that is not JSON, a note saying so.
    var description: String?
    var requestID: String?
    /// An object (`{"type":"RETRY_LATER"}`) or a plain string (`"REAUTHENTICATE"`), kept as sent.
    var resolution: JSONValue?
    var suggestedUserMessage: String?
    var docURL: String?

    init(_ response: HTTPResponse, redactor: Redactor) {
        status = response.status
        requestID = response.header("sc-request-id").map(redactor.clean)
        guard let members = Self.jsonObject(response.body) else {
            description = Self.nonJSONNote(response)
            return
        }
        func text(_ name: String) -> String? {
            guard let value = members[name] else { return nil }
            switch value {
            case .string(let string) where !string.isEmpty: return redactor.clean(string)
            case .int(let number): return String(number)
            default: return nil
            }
        }
        error = text("error") ?? text("type")
        code = text("code")
        description = text("error_description") ?? text("description") ?? text("message")
        requestID = text("requestId") ?? requestID
        if let resolution = members["resolution"], !resolution.isNull { self.resolution = redactor.clean(resolution) }
        suggestedUserMessage = text("suggestedUserMessage")
        docURL = text("docURL")
    }

    /// The `error.data` members (without `kind`).
    var details: [String: JSONValue] {
        var details: [String: JSONValue] = ["status": .int(Int64(status))]
        if let error { details["error"] = .string(error) }
        if let code { details["code"] = .string(code) }
        if let description { details["description"] = .string(description) }
        if let requestID { details["requestId"] = .string(requestID) }
        if let resolution { details["resolution"] = resolution }
        if let suggestedUserMessage { details["suggestedUserMessage"] = .string(suggestedUserMessage) }
        if let docURL { details["docURL"] = .string(docURL) }
        return details
    }

    /// `invalid_grant: Invalid or expired refresh token.`, or whichever parts exist.
    var summary: String? {
        switch (error, description) {
        case let (error?, description?): "\(error): \(description)"
        case let (error?, nil): error
        case let (nil, description?): description
        case (nil, nil): nil
        }
    }

    private static func jsonObject(_ body: Data) -> JSONObject? {
        guard !body.isEmpty, case .object(let members)? = try? JSONDecoder().decode(JSONValue.self, from: body) else {
            return nil
        }
        return members
    }

    private static func nonJSONNote(_ response: HTTPResponse) -> String {
        if response.body.isEmpty { return "empty response" }
        if (try? JSONDecoder().decode(JSONValue.self, from: response.body)) != nil {
            return "unrecognised JSON response"
        }
        let mediaType = response.header("content-type")?.split(separator: ";").first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .flatMap { $0.allSatisfy { $0.isLetter || $0.isNumber || "/.+-".contains($0) } ? $0 : nil }
        return "non-JSON response (\(mediaType ?? "no content type"))"
    }
}
