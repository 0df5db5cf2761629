import WireFormats

/// The `error` member of a JSON-RPC response. Handlers throw it; the connection sends it to the request's id.
public struct ResponseError: Error, Codable, Sendable, Equatable {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }
}

extension ResponseError {
    /// The codes JSON-RPC 2.0 and the LSP base protocol define.
    public enum Code {
        public static let parseError = -32700
        public static let invalidRequest = -32600
        public static let methodNotFound = -32601
        public static let invalidParams = -32602
        public static let internalError = -32603
        public static let requestCancelled = -32800
    }

    // Every error carries `data.kind`, so a client switches on one field whatever the layer that failed.
    public static func parseError(_ message: String) -> ResponseError { .init(Code.parseError, "parseError", message) }
    public static func invalidRequest(_ message: String) -> ResponseError {
        .init(Code.invalidRequest, "invalidRequest", message)
    }
    public static func methodNotFound(_ method: String) -> ResponseError {
        .init(Code.methodNotFound, "methodNotFound", "unknown method '\(method)'")
    }
    public static func invalidParams(_ message: String) -> ResponseError { .init(Code.invalidParams, "invalidParams", message) }
    public static func internalError(_ message: String) -> ResponseError { .init(Code.internalError, "internalError", message) }
    public static let cancelled = ResponseError(Code.requestCancelled, "cancelled", "request cancelled")

    private init(_ code: Int, _ kind: String, _ message: String) {
        self.init(code: code, message: message, data: ["kind": .string(kind)])
    }
}
