/// How messages are framed on the wire; the connection answers in the style of the first message it read.
public enum FramingStyle: Sendable, Hashable {
    /// LSP base protocol: `Content-Length: N\r\n\r\n` followed by N bytes.
    case contentLength
    /// One JSON text per line.
    case newlineDelimited
}

/// What `FrameParser` makes of the bytes it was fed.
public enum FrameEvent: Sendable, Equatable {
    /// One complete body (a JSON text, not yet parsed) and the framing it came in.
    case message([UInt8], FramingStyle)
    /// Bytes that were skipped; the stream has been resynchronised.
    case problem(FramingProblem)
}

/// A framing error: what was wrong, and the id of the broken request if a lenient scan could read one
/// (so the error can be sent to that id instead of being lost).
public struct FramingProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        case headerTooLarge, bodyTooLarge, missingContentLength, invalidContentLength
        case conflictingContentLength, truncatedAtEndOfInput, unexpectedBytes
    }

    public var kind: Kind
    public var recoveredID: RequestID?
    /// A human-readable explanation; never contains body bytes.
    public var detail: String

    public init(kind: Kind, recoveredID: RequestID? = nil, detail: String) {
        self.kind = kind
        self.recoveredID = recoveredID
        self.detail = detail
    }

    public var description: String {
        "\(kind.rawValue): \(detail)" + (recoveredID.map { " (request id \($0))" } ?? "")
    }
}
