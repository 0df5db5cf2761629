import WireFormats

/// The `error` member of a JSON-RPC response. Handlers throw it; the connection sends it to the request's id.
package struct ResponseError: Error, Codable, Sendable, Equatable {
    package var code: Int
    package var message: String
    package var data: JSONValue?

    package init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }
}

extension ResponseError {
    /// The codes JSON-RPC 2.0 and the LSP base protocol define.
    package enum Code {
        package static let parseError = -32700
        package static let invalidRequest = -32600
        package static let methodNotFound = -32601
        package static let invalidParams = -32602
        package static let internalError = -32603
        package static let requestCancelled = -32800
    }

    // Every error carries `data.kind`, so a client switches on one field whatever the layer that failed.
    package static func parseError(_ message: String) -> ResponseError { .init(Code.parseError, "parseError", message) }
    package static func invalidRequest(_ message: String) -> ResponseError {
        .init(Code.invalidRequest, "invalidRequest", message)
    }
    package static func methodNotFound(_ method: String) -> ResponseError {
        .init(Code.methodNotFound, "methodNotFound", "unknown method '\(method)'")
    }
    package static func invalidParams(_ message: String) -> ResponseError {
        .init(Code.invalidParams, "invalidParams", message)
    }
    package static func internalError(_ message: String) -> ResponseError {
        .init(Code.internalError, "internalError", message)
    }
    package static let cancelled = ResponseError(Code.requestCancelled, "cancelled", "request cancelled")

    private init(_ code: Int, _ kind: String, _ message: String) {
        self.init(code: code, message: message, data: ["kind": .string(kind)])
    }
}
