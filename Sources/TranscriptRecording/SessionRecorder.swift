import AgentSupport
import Dispatch
import Foundation
import JSONRPC
import SmartcarOAuth
import Synchronization
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `--record FILE`: writes the live session as a transcript (Protocol/transcripts/README.md) that
/// replays as it is: a header that starts the agent against `{{upstream}}`, then every client message
/// (`send`), every upstream exchange (`upstream`) and every agent message (`expect`), in the order they
/// happened, each secret replaced by a stable placeholder (`SessionRedactor`).
///
/// The file is created 0600 and written step by step, so a session that crashes still leaves its
/// transcript. Writes go through a serial queue of their own: the observer is called on the connection's
/// threads and the transport on the cooperative pool, neither of which may block on the disk.
package final class SessionRecorder: MessageObserver, Sendable {
    /// A file that cannot be recorded to; the text says why.
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    private let fd: Int32
    private let queue = DispatchQueue(label: "smartcar-auth-agent --record")
    private let redactor: Mutex<SessionRedactor>
    private let upstream = Mutex(Upstream())

    /// The requests to Smartcar: those not answered yet are written as stalls if the session ends first.
    private struct Upstream {
        /// Requests begun so far.
        var count = 0
        var inFlight: [Int: HTTPRequest] = [:]
        /// The count the last `waitForUpstream` step waits for.
        var waitedFor = 0
    }

    /// - Parameters:
    ///   - storePath: the store file, or nil for `--store memory`.
    ///   - arguments: flags a replay needs to behave the same (`--allow-clock-control`, timeouts).
    package init(
        path: String, configuration: SmartcarConfiguration, storePath: String?, arguments: [String],
        agentVersion: String
    ) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw Failure(description: "cannot write the recording \(path): \(String(cString: strerror(errno)))")
        }
        fchmod(fd, 0o600)
        self.fd = fd
        let redactor = SessionRedactor(configuration: configuration, storePath: storePath)
        self.redactor = Mutex(redactor)
        let header = Self.header(configuration: configuration, storePath: storePath, arguments: arguments)
        let time = Date().formatted(.iso8601)
        enqueue(
            """
            # Recorded by smartcar-auth-agent \(agentVersion) with --record at \(time).
            # Secrets are placeholders ({{client_secret}}, {{access_1}}, {{refresh_1}}, {{code_1}}, {{state_1}}, {{vin_1}}...);
            # replay with: replay-transcripts --agent PATH-TO-smartcar-auth-agent THIS-FILE

            \(header.prettyText(width: 140))

            """)
    }

    /// The header step: the store, the flags, and an environment pointing every origin at `{{upstream}}`.
    static func header(configuration: SmartcarConfiguration, storePath: String?, arguments: [String]) -> JSONValue {
        var environment: JSONObject = [:]
        if configuration.clientID != nil { environment["SMARTCAR_CLIENT_ID"] = "{{client_id}}" }
        if configuration.clientSecret != nil { environment["SMARTCAR_CLIENT_SECRET"] = "{{client_secret}}" }
        if let redirectURI = configuration.redirectURI { environment["SMARTCAR_REDIRECT_URI"] = .string(redirectURI) }
        if configuration.mode != .live { environment["SMARTCAR_MODE"] = .string(configuration.mode.rawValue) }
        for name in ["SMARTCAR_CONNECT_ORIGIN", "SMARTCAR_AUTH_ORIGIN", "SMARTCAR_IAM_ORIGIN", "SMARTCAR_API_ORIGIN"] {
            environment[name] = "{{upstream}}"
        }
        let store: [JSONValue] = ["--store", storePath == nil ? "memory" : "{{store}}"]
        return .object(["args": .array(store + arguments.map { .string($0) }), "env": .object(environment)])
    }

    // MARK: MessageObserver

    /// A client message. When it came while requests to Smartcar were in flight, a `waitForUpstream` step
    /// goes first, so the replay sends it at the same point (an `exit` after the refresh left, not before).
    package func received(_ body: [UInt8]) {
        let wait = upstream.withLock { state -> Int? in
            guard !state.inFlight.isEmpty, state.count > state.waitedFor else { return nil }
            state.waitedFor = state.count
            return state.count
        }
        record { redactor in
            let step: JSONValue
            if let message = try? JSONParser.parse(bytes: body) {
                step = ["send": redactor.clientMessage(message)]
            } else {
                step = ["sendRaw": .string(redactor.text(String(decoding: body, as: UTF8.self)) + "\n")]
            }
            return wait.map { [["waitForUpstream": .int(Int64($0))], step] } ?? [step]
        }
    }

    package func sent(_ body: [UInt8]) {
        record { redactor in
            guard let message = try? JSONParser.parse(bytes: body) else { return [] }
            return [["expect": redactor.agentMessage(message)]]
        }
    }

    // MARK: Upstream

    /// A request on its way to Smartcar; the number is handed back to `exchanged`.
    func began(_ request: HTTPRequest) -> Int {
        upstream.withLock { state in
            state.count += 1
            state.inFlight[state.count] = request
            return state.count
        }
    }

    /// One exchange with Smartcar, recorded when its answer (or failure) is in.
    func exchanged(_ exchange: Int, _ outcome: Result<HTTPResponse, any Error>) {
        guard let request = upstream.withLock({ $0.inFlight.removeValue(forKey: exchange) }) else { return }
        record { redactor in
            [
                [
                    "upstream": [
                        "request": redactor.request(request),
                        "response": redactor.response(outcome, path: request.url.path),
                    ]
                ]
            ]
        }
    }

    /// Records the requests still unanswered as stalls (the session ended while Smartcar had them) and the
    /// end (input closed, the exit code), waits until every step is on disk and closes the file. Call it
    /// before the process exits.
    package func finish(exitCode: Int32) {
        let unanswered = upstream.withLock { state in
            defer { state.inFlight = [:] }
            return state.inFlight.sorted { $0.key < $1.key }.map(\.value)
        }
        for request in unanswered {
            record { redactor in [["upstream": ["request": redactor.request(request), "response": ["fault": "stall"]]]]
            }
        }
        enqueue("{\"closeInput\": true}\n{\"expectExit\": \(exitCode)}\n")
        queue.sync {
            _ = fsync(fd)
            close(fd)
        }
    }

    // MARK: Writing

    /// Builds steps under the lock (so placeholders are numbered in the order things happened) and queues
    /// their text in that same order.
    private func record(_ build: (inout SessionRedactor) -> [JSONValue]) {
        redactor.withLock { redactor in
            for step in build(&redactor) { enqueue(step.prettyText(width: 140) + "\n") }
        }
    }

    private func enqueue(_ text: String) {
        let fd = self.fd
        queue.async { FileDescriptor.writeAll(fd, text) }
    }
}
