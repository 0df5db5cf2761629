import Foundation
import JSONRPC
import WireFormats

/// Everything one agent wrote to stdout, filled by the reading thread. Waiting is on a condition variable with
/// a deadline, so a caller wakes the moment what it waits for arrives, and a hang shows as a timeout.
final class Inbox: @unchecked Sendable {
    // Safe: `contents` is read and written only while `condition` is locked (every access below).
    struct Contents {
        /// Every message in arrival order (notifications too); a batch reply is one message.
        var messages: [JSONValue] = []
        /// Responses by id, batch elements included, so "answered exactly once" is a count.
        var byID: [JSONValue: [JSONValue]] = [:]
        /// Output that is not a well-formed protocol message.
        var violations: [String] = []
        /// The agent closed its stdout (it exited or was killed).
        var ended = false

        func count(_ id: JSONValue) -> Int { byID[id]?.count ?? 0 }
        func first(_ id: JSONValue) -> JSONValue? { byID[id]?.first }
    }

    private let condition = NSCondition()
    private var contents = Contents()

    func read<T>(_ body: (Contents) -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body(contents)
    }

    /// Waits until `ready` holds (true) or the deadline passes or output ends without it (false).
    func wait(until deadline: ContinuousClock.Instant, _ ready: (Contents) -> Bool) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !ready(contents) {
            if contents.ended { return false }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            _ = condition.wait(until: Date().addingTimeInterval(Double(left.components.seconds) + Double(left.components.attoseconds) * 1e-18))
        }
        return true
    }

    func deliver(_ piece: OutputFramer.Piece) {
        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        switch piece {
        case .violation(let text):
            contents.violations.append(text)
        case .message(let body):
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)) else {
                contents.violations.append("not JSON: \(String(decoding: body.prefix(300), as: UTF8.self))")
                return
            }
            contents.messages.append(value)
            switch value {
            case .array(let elements):
                for element in elements { file(element) }
            case .object(let members) where members["id"] == nil && members["method"] != nil:
                break  // a notification
            default:
                file(value)
            }
        }
    }

    func end() {
        condition.lock()
        contents.ended = true
        condition.broadcast()
        condition.unlock()
    }

    private func file(_ response: JSONValue) {
        guard case .object(let members) = response, let id = members["id"], members["result"] != nil || members["error"] != nil else {
            contents.violations.append("not a response: \(AgentProcess.text(response).prefix(300))")
            return
        }
        contents.byID[id, default: []].append(response)
    }
}
