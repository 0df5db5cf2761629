import Foundation
import WireFormats

/// Why a byte stream is not a request we can answer; the connection answers `status` and closes.
struct HTTPParseError: Error, Equatable {
    var status: Int
    var reason: String
}

/// Incremental HTTP/1.x request parser: feed bytes as they arrive, take requests out as they complete.
///
/// Pure (no I/O) so it can be tested byte by byte. Bodies come by `Content-Length` or
/// `Transfer-Encoding: chunked`; header and body sizes are bounded.
struct HTTPRequestParser {
    enum Event: Sendable {
        /// The head of a request carrying `Expect: 100-continue` is in, its body is not: say "go on".
        case expectContinue
        case request(HTTPServerRequest)
    }

    private struct Head {
        var request: HTTPServerRequest
        var body: BodyFraming
        var continueAnnounced = false
    }

    private enum BodyFraming { case length(Int), chunked }

    let maxHeaderBytes: Int
    let maxBodyBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var head: Head?

    init(maxHeaderBytes: Int = 16 << 10, maxBodyBytes: Int = 1 << 20) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// Whether bytes of an unfinished request are waiting (EOF now would truncate it).
    var hasPartialRequest: Bool { head != nil || start < buffer.count }

    mutating func append(_ bytes: some Collection<UInt8>) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next event, or nil when more bytes are needed.
    mutating func next() throws(HTTPParseError) -> Event? {
        if head == nil {
            guard let parsed = try parseHead() else { return nil }
            head = parsed
        }
        guard var current = head else { return nil }
        let complete: (body: [UInt8], consumed: Int)?
        switch current.body {
        case .length(let length):
            complete = buffer.count - start >= length ? (Array(buffer[start..<start + length]), length) : nil
        case .chunked:
            complete = try decodeChunked()
        }
        guard let (body, consumed) = complete else {
            if !current.continueAnnounced,
                current.request.header("expect")?.lowercased() == "100-continue"
            {
                current.continueAnnounced = true
                head = current
                return .expectContinue
            }
            return nil
        }
        start += consumed
        head = nil
        current.request.body = body
        return .request(current.request)
    }

    private mutating func parseHead() throws(HTTPParseError) -> Head? {
        // Tolerate empty lines before a request line (RFC 9112 §2.2).
        while start + 1 < buffer.count, buffer[start] == 13, buffer[start + 1] == 10 { start += 2 }
        guard let end = Self.find([13, 10, 13, 10], in: buffer, from: start) else {
            if buffer.count - start > maxHeaderBytes {
                throw HTTPParseError(status: 431, reason: "request head larger than \(maxHeaderBytes) bytes")
            }
            return nil
        }
        guard end - start <= maxHeaderBytes else {
            throw HTTPParseError(status: 431, reason: "request head larger than \(maxHeaderBytes) bytes")
        }
        guard let text = String(validating: buffer[start..<end], as: UTF8.self) else {
            throw HTTPParseError(status: 400, reason: "request head is not UTF-8")
        }
        start = end + 4
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, !requestLine[0].isEmpty, requestLine[2].hasPrefix("HTTP/1.") else {
            throw HTTPParseError(status: 400, reason: "malformed request line")
        }
        var target = String(requestLine[1])
        if target.hasPrefix("http://") || target.hasPrefix("https://") {  // absolute-form
            let afterScheme = target[target.index(target.firstIndex(of: ":")!, offsetBy: 3)...]
            target = afterScheme.firstIndex(of: "/").map { String(afterScheme[$0...]) } ?? "/"
        }
        guard target.hasPrefix("/") else { throw HTTPParseError(status: 400, reason: "unsupported request target") }
        let (path, query) = RequestTarget.split(target)
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                !line.first!.isWhitespace, !line[..<colon].contains(where: \.isWhitespace)
            else { throw HTTPParseError(status: 400, reason: "malformed header line") }
            headers.append(
                (
                    line[..<colon].lowercased(),
                    line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                ))
        }
        let request = HTTPServerRequest(
            method: String(requestLine[0]), path: path, rawQuery: query,
            version: String(requestLine[2]), headers: headers, body: [])
        return Head(request: request, body: try bodyFraming(request))
    }

    private func bodyFraming(_ request: HTTPServerRequest) throws(HTTPParseError) -> BodyFraming {
        if let encoding = request.header("transfer-encoding") {
            guard encoding.lowercased() == "chunked" else {
                throw HTTPParseError(status: 501, reason: "unsupported transfer-encoding")
            }
            return .chunked
        }
        guard let field = request.header("content-length") else { return .length(0) }
        let values = Set(field.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        guard values.count == 1, let value = values.first, !value.isEmpty,
            value.allSatisfy(\.isASCII), value.allSatisfy(\.isNumber), let length = Int(value)
        else { throw HTTPParseError(status: 400, reason: "invalid content-length") }
        guard length <= maxBodyBytes else {
            throw HTTPParseError(status: 413, reason: "body larger than \(maxBodyBytes) bytes")
        }
        return .length(length)
    }

    /// Decodes a complete chunked body from `start`, or nil if it has not all arrived.
    /// Re-decodes from the beginning on every call: simple, and bounded by `maxBodyBytes`.
    private func decodeChunked() throws(HTTPParseError) -> (body: [UInt8], consumed: Int)? {
        var body: [UInt8] = []
        var position = start
        while true {
            guard let lineEnd = Self.find([13, 10], in: buffer, from: position) else {
                if buffer.count - position > 1024 { throw HTTPParseError(status: 400, reason: "malformed chunk size") }
                return nil
            }
            let sizeText =
                String(decoding: buffer[position..<lineEnd], as: UTF8.self)
                .split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard !sizeText.isEmpty, sizeText.count <= 8, let size = Int(sizeText, radix: 16) else {
                throw HTTPParseError(status: 400, reason: "malformed chunk size")
            }
            position = lineEnd + 2
            if size == 0 {
                // Trailer fields (ignored) up to an empty line.
                while true {
                    guard let trailerEnd = Self.find([13, 10], in: buffer, from: position) else { return nil }
                    let empty = trailerEnd == position
                    position = trailerEnd + 2
                    if empty { return (body, position - start) }
                }
            }
            guard body.count + size <= maxBodyBytes else {
                throw HTTPParseError(status: 413, reason: "body larger than \(maxBodyBytes) bytes")
            }
            guard buffer.count >= position + size + 2 else { return nil }
            guard buffer[position + size] == 13, buffer[position + size + 1] == 10 else {
                throw HTTPParseError(status: 400, reason: "chunk not followed by CRLF")
            }
            body.append(contentsOf: buffer[position..<position + size])
            position += size + 2
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = from
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }
}
