import Foundation
import WireFormats

/// A response as it goes on the wire: `"jsonrpc"`, `"id"`, then `"result"` (always present on success, `null`
/// when empty) or `"error"`. The envelope is written by hand; only a result value goes through `JSONEncoder`.
struct Response: Sendable {
    enum Outcome: Sendable {
        case result(any Encodable & Sendable)
        /// A result already encoded as one JSON value (from a handler's immediate path).
        case encodedResult([UInt8])
        case error(ResponseError)
    }

    var id: RequestID
    var outcome: Outcome

    static func error(_ error: ResponseError, id: RequestID?) -> Response {
        Response(id: id ?? .null, outcome: .error(error))
    }

    var body: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160)
        append(to: &out)
        return out
    }

    func append(to out: inout [UInt8]) {
        JSONText.append(raw: #"{"jsonrpc":"2.0","id":"#, to: &out)
        Self.append(id, to: &out)
        switch outcome {
        case .result(let value):
            guard let json = WireEncoding.encodeValue(value) else {
                JSONText.append(
                    raw:
                        #","error":{"code":-32603,"message":"internal error: unencodable reply","data":{"kind":"internalError"}}}"#,
                    to: &out)
                return
            }
            JSONText.append(raw: #","result":"#, to: &out)
            out.append(contentsOf: json)
        case .encodedResult(let json):
            JSONText.append(raw: #","result":"#, to: &out)
            out.append(contentsOf: json)
        case .error(let error):
            JSONText.append(raw: #","error":{"code":"#, to: &out)
            JSONText.append(Int64(error.code), to: &out)
            JSONText.append(raw: #","message":"#, to: &out)
            JSONText.append(error.message, to: &out)
            if let data = error.data, let json = WireEncoding.encodeValue(data) {
                JSONText.append(raw: #","data":"#, to: &out)
                out.append(contentsOf: json)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    private static func append(_ id: RequestID, to out: inout [UInt8]) {
        switch id {
        case .number(let n): JSONText.append(n, to: &out)
        case .string(let s): JSONText.append(s, to: &out)
        case .null: JSONText.append(raw: "null", to: &out)
        }
    }
}

/// An agent → client notification.
struct OutgoingNotification: Encodable {
    var jsonrpc = "2.0"
    var method: String
    var params: JSONValue
}

enum WireEncoding {
    /// Encodes a value compactly, `/` unescaped. Every value sent is built from Codable structs and
    /// `JSONValue`, which always encode; nil (a programming error) is answered with a generic internal error
    /// rather than a crash.
    static func encodeValue(_ value: some Encodable) -> [UInt8]? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { Array($0) }
    }

    /// Joins the bodies of a batch's responses into one reply.
    static func batch(_ bodies: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (index, body) in bodies.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: body)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    static func frame(_ body: [UInt8], style: FramingStyle) -> [UInt8] {
        var out: [UInt8] = []
        appendFrame(body, style: style, to: &out)
        return out
    }

    static func appendFrame(_ body: [UInt8], style: FramingStyle, to out: inout [UInt8]) {
        switch style {
        case .contentLength:
            out.append(contentsOf: "Content-Length: \(body.count)\r\n\r\n".utf8)
            out.append(contentsOf: body)
        case .newlineDelimited:
            out.append(contentsOf: body)
            out.append(0x0A)
        }
    }
}
