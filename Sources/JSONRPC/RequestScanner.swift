#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the envelope of the common message, a well-formed request or notification, in one validating pass
/// over its bytes and without a `JSONDecoder` (which costs tens of microseconds per message).
///
/// It only ever says yes: for a JSON object with `"jsonrpc":"2.0"`, a `method` string, an `id` that is an
/// integer, a string or null (or no `id`), `params` that are an object or an array (or none), every
/// envelope member written once and without escapes, and the whole text valid JSON. Anything else (a batch,
/// an error to report, an unusual spelling) yields nil and is read by `Envelope`, so every rejection is
/// still decided, and worded, in one place.
enum RequestScanner {
    struct Request: Equatable {
        /// nil: a notification.
        var id: RequestID?
        var method: String
        /// Where the `params` value is, when present.
        var params: Range<Int>?
    }

    static func scan(_ p: UnsafeBufferPointer<UInt8>) -> Request? {
        var cursor = JSONCursor(p)
        guard cursor.consume(UInt8(ascii: "{")) else { return nil }
        var versionSeen = false
        var id: RequestID?
        var idSeen = false
        var method: String?
        var params: Range<Int>?
        if !cursor.consume(UInt8(ascii: "}")) {
            repeat {
                cursor.skipWhitespace()
                let keyStart = cursor.i + 1
                guard cursor.current == UInt8(ascii: "\""), cursor.skipString(), !cursor.lastStringHadEscape else { return nil }
                let key = Member(p, keyStart..<(cursor.i - 1))
                guard cursor.consume(UInt8(ascii: ":")) else { return nil }
                cursor.skipWhitespace()
                let valueStart = cursor.i
                guard let kind = cursor.skipValue() else { return nil }
                let value = valueStart..<cursor.i
                let plainString = kind == .string && !cursor.lastStringHadEscape
                switch key {
                case .jsonrpc:
                    guard !versionSeen, plainString, bytes(p, value, equal: "\"2.0\"") else { return nil }
                    versionSeen = true
                case .id:
                    guard !idSeen, let read = readID(kind, plainString: plainString, p, value) else { return nil }
                    idSeen = true
                    id = read
                case .method:
                    guard method == nil, plainString else { return nil }
                    method = String(decoding: UnsafeBufferPointer(rebasing: p[(value.lowerBound + 1)..<(value.upperBound - 1)]), as: UTF8.self)
                case .params:
                    guard params == nil, kind == .object || kind == .array else { return nil }
                    params = value
                case .other:
                    break
                }
            } while cursor.consume(UInt8(ascii: ","))
            guard cursor.consume(UInt8(ascii: "}")) else { return nil }
        }
        cursor.skipWhitespace()
        guard cursor.atEnd, versionSeen, let method else { return nil }
        return Request(id: id, method: method, params: params)
    }

    private enum Member {
        case jsonrpc, id, method, params, other

        init(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
            if RequestScanner.bytes(p, range, equal: "id") { self = .id }
            else if RequestScanner.bytes(p, range, equal: "method") { self = .method }
            else if RequestScanner.bytes(p, range, equal: "params") { self = .params }
            else if RequestScanner.bytes(p, range, equal: "jsonrpc") { self = .jsonrpc }
            else { self = .other }
        }
    }

    /// Whether `p[range]` spells `text` (a plain byte comparison; the generic `elementsEqual` costs far more).
    static func bytes(_ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, equal text: StaticString) -> Bool {
        range.count == text.utf8CodeUnitCount && memcmp(p.baseAddress! + range.lowerBound, text.utf8Start, range.count) == 0
    }

    /// An integer that fits in 64 bits (no fraction or exponent), a plain string, or null.
    private static func readID(_ kind: JSONCursor.Kind, plainString: Bool, _ p: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> RequestID? {
        switch kind {
        case .null: return .null
        case .string:
            guard plainString else { return nil }
            return .string(String(decoding: UnsafeBufferPointer(rebasing: p[(range.lowerBound + 1)..<(range.upperBound - 1)]), as: UTF8.self))
        case .number:
            var value: Int64 = 0
            var index = range.lowerBound
            let negative = p[index] == UInt8(ascii: "-")
            if negative { index += 1 }
            guard index < range.upperBound, range.upperBound - index <= 18 else { return nil }
            while index < range.upperBound {
                let digit = p[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                value = value * 10 + Int64(digit)
                index += 1
            }
            if negative && value == 0 { return nil }
            return .number(negative ? -value : value)
        default: return nil
        }
    }
}
