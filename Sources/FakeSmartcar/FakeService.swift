import Foundation
import Synchronization

/// The fake's behaviour behind the socket server: records each request, applies queued faults, routes
/// to the Smartcar endpoints or the control API. Holds no reference to the server (no cycle).
final class FakeService: Sendable {
    let options: FakeSmartcar.Options
    let state = Mutex(FakeState())
    let held = HeldAnswers()

    init(options: FakeSmartcar.Options) {
        self.options = options
    }

    func handle(_ request: HTTPServerRequest) -> HTTPReply {
        if request.path.hasPrefix(ControlAPI.prefix) {
            return .respond(control(request), delay: .zero)
        }
        let endpoint = Endpoint(path: request.path)
        let requestID = UUID().uuidString.lowercased()
        let record = RecordedRequest(request, endpoint: endpoint, requestID: requestID)
        let fault = state.withLock { state -> Fault? in
            state.log.append(record)
            state.inFlight += 1
            state.peakInFlight = max(state.peakInFlight, state.inFlight)
            guard let endpoint else { return nil }
            state.counts[endpoint, default: 0] += 1
            return state.takeFault(for: endpoint)
        }
        var delay = options.latency
        var response: HTTPServerResponse
        switch fault {
        case .stall?:
            logLine(request, endpoint, outcome: "stalled (fault)")
            return .stall
        case .drop?:
            logLine(request, endpoint, outcome: "dropped (fault)")
            return .drop
        case .dropAfterHandling?:
            let status = route(request, endpoint: endpoint, requestID: requestID).status
            logLine(request, endpoint, outcome: "\(status), answer dropped (fault)")
            return .drop
        case .delay(let extra)?:
            delay += extra
            response = route(request, endpoint: endpoint, requestID: requestID)
        case .endlessBody?:
            let status = route(request, endpoint: endpoint, requestID: requestID).status
            logLine(request, endpoint, outcome: "\(status), answered with an endless body (fault)")
            // A chunk a millisecond: endless, but not a busy loop taking a core from everything else.
            return .stream(head: Fault.endlessHead, chunk: Fault.endlessChunk, pause: .milliseconds(1))
        case .hostileAnswer(let expiresIn, let omit)?:
            response = Fault.rewrite(
                route(request, endpoint: endpoint, requestID: requestID), expiresIn: expiresIn, omit: omit)
        case .hold?:
            response = route(request, endpoint: endpoint, requestID: requestID)
            response.headers.append(("SC-Request-Id", requestID))
            logLine(request, endpoint, outcome: "\(response.status), held (fault)")
            let answer = HeldAnswer(requestID: requestID)
            held.add(answer)
            return .held(response, answer)
        case let fault?:
            response = fault.cannedResponse(requestID: requestID)!
        case nil:
            response = route(request, endpoint: endpoint, requestID: requestID)
        }
        response.headers.append(("SC-Request-Id", requestID))
        logLine(request, endpoint, outcome: "\(response.status)\(fault == nil ? "" : " (fault)")")
        return .respond(response, delay: delay)
    }

    /// The server stops holding `request` (its answer is about to be sent, it was dropped, or its stall
    /// ended): it is no longer in flight.
    func finished(_ request: HTTPServerRequest) {
        guard !request.path.hasPrefix(ControlAPI.prefix) else { return }
        state.withLock { $0.inFlight -= 1 }
    }

    func mintTokens(userID: String, clientID: String) -> (accessToken: String, refreshToken: String) {
        let now = options.now()
        return state.withLock { $0.mintPair(userID: userID, clientID: clientID, now: now, options: options) }
    }

    func adoptGrant(userID: String, accessToken: String, accessExpiresAt: Date, refreshToken: String) {
        let now = options.now()
        state.withLock { state in
            state.accessTokens[accessToken] = .init(userID: userID, expiresAt: accessExpiresAt)
            state.refreshTokens[refreshToken] = .init(
                userID: userID, clientID: options.clientID, expiresAt: now + options.refreshTokenLifetime)
        }
    }

    func issueCode(redirectURI: String?, userID: String, clientID: String) -> String {
        let now = options.now()
        return state.withLock {
            $0.issueCode(redirectURI: redirectURI, userID: userID, clientID: clientID, now: now, options: options)
        }
    }

    func isLive(refreshToken: String) -> Bool {
        let now = options.now()
        return state.withLock { $0.refreshTokenUsable(refreshToken, now: now, reuse: options.refreshReuse) != nil }
    }

    func revokeTokens(userID: String) -> Int {
        state.withLock { state in
            let before = state.accessTokens.count + state.refreshTokens.count
            state.accessTokens = state.accessTokens.filter { $0.value.userID != userID }
            state.refreshTokens = state.refreshTokens.filter { $0.value.userID != userID }
            return before - state.accessTokens.count - state.refreshTokens.count
        }
    }

    /// Sends every held answer, one at a time in a random order (each one sent before the next is
    /// released); answers the request ids in the order they went.
    func releaseHeld(using generator: inout some RandomNumberGenerator) -> [String] {
        let answers = held.takeAll().shuffled(using: &generator)
        for answer in answers {
            answer.release()
            answer.waitUntilSent()
        }
        return answers.map(\.requestID)
    }

    func inject(_ fault: Fault, on endpoint: Endpoint?, times: Int) {
        guard times > 0 else { return }
        state.withLock { $0.faults.append(.init(fault: fault, endpoint: endpoint, remaining: times)) }
    }

    func reset() {
        state.withLock { state in
            state.log.removeAll()
            state.counts.removeAll()
            state.faults.removeAll()
            state.peakInFlight = state.inFlight
        }
    }

    private func logLine(_ request: HTTPServerRequest, _ endpoint: Endpoint?, outcome: String) {
        options.log?("\(request.method) \(request.path) [\(endpoint?.rawValue ?? "unknown")] -> \(outcome)")
    }
}
