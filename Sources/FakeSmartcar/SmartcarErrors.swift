import WireFormats

/// The two error body shapes Smartcar uses, built field for field.
enum SmartcarErrors {
    /// OAuth style, from the token endpoints: `{"error":"invalid_grant","error_description":"..."}`.
    static func oauth(_ error: String, _ description: String) -> JSONValue {
        .object(["error": .string(error), "error_description": .string(description)])
    }

    /// API v2 style, e.g. `{"type":"RATE_LIMIT","code":"SMARTCAR_API",...,"resolution":{"type":"RETRY_LATER"}}`.
    static func v2(
        type: String, code: String?, status: Int, description: String, docURL: String,
        resolution: String?, requestID: String, suggestedUserMessage: String?
    ) -> JSONValue {
        .object([
            "type": .string(type),
            "code": code.map(JSONValue.string) ?? .null,
            "description": .string(description),
            "docURL": .string(docURL),
            "statusCode": .int(Int64(status)),
            "requestId": .string(requestID),
            "resolution": resolution.map { .object(["type": .string($0)]) } ?? .null,
            "suggestedUserMessage": suggestedUserMessage.map(JSONValue.string) ?? .null,
        ])
    }
}
