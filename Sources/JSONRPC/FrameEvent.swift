/// How a message was framed on the wire. Each answer goes in the framing of the message it answers; the agent's
/// own notifications in that of the first message read.
enum FramingStyle: Sendable, Equatable {
    /// The LSP base protocol: `Content-Length: N`, a blank line, N bytes.
    case contentLength
    /// One JSON text per line, so a shell can talk with `printf`.
    case newlineDelimited
}

/// What `FrameParser` makes of the bytes it is fed.
enum FrameEvent: Sendable, Equatable {
    /// One complete message body: a JSON text, not yet parsed (it may still turn out to be invalid JSON).
    case message([UInt8], FramingStyle)
    /// Bytes that were skipped; the parser has resynchronised on the next message.
    case problem(FramingProblem)
}

/// Why bytes were skipped, and the id of the request they held if it could still be read, so that
/// "whenever the id can be recovered, the error goes to that id".
struct FramingProblem: Sendable, Equatable, CustomStringConvertible {
    enum Kind: Sendable, Equatable {
        case headerTooLarge
        case bodyTooLarge
        case missingContentLength
        case invalidContentLength
        case conflictingContentLength
        case truncatedAtEndOfInput
        case unexpectedBytes
        /// A header block followed at once by the next header block.
        case missingBody
    }

    var kind: Kind
    var recoveredID: RequestID?
    /// The framing of the skipped bytes when it is known (a header block's, a line's): the error is answered in it.
    var style: FramingStyle?
    var detail: String

    init(kind: Kind, recoveredID: RequestID? = nil, style: FramingStyle? = nil, detail: String) {
        self.kind = kind
        self.recoveredID = recoveredID
        self.style = style
        self.detail = detail
    }

    var description: String { detail }
}
