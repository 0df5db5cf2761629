import JSONRPC
import SmartcarOAuth
import WireFormats

/// `connect`: Connect with the redirect caught on a loopback port of this machine, as `gh auth login` does.
extension Agent {
    /// Listens on the redirect URI's port, tells the client the Connect URL (`connectURL` notification), waits
    /// for the redirect (or the timeout, a cancellation, the end of input), completes it as `handleRedirect`
    /// does, answers the browser with a page saying how it went, and closes the port before returning.
    func connectThroughLoopback(
        _ options: ConnectOptions, key: String?, timeoutSeconds: Double, context: PeerContext
    ) async throws -> TokenSummary {
        guard let redirectURI = options.redirectURI ?? setup.configuration.redirectURI else {
            throw AgentError.invalidParams(
                "invalid params: connect needs a redirect URI to listen on (http://localhost:PORT/PATH or "
                    + "http://127.0.0.1:PORT/PATH; port 0 picks a free one): pass 'redirectURI' or set SMARTCAR_REDIRECT_URI"
            )
        }
        let target = try LoopbackRedirectURI(redirectURI)
        let events: AsyncStream<LoopbackConnectEvent>
        switch await loopbackConnect.claim(redirectURI: target.uri(port: target.port)) {
        case .success(let claimed): events = claimed
        case .failure(let busy):
            throw AgentError.invalidRequest(
                "another connect is waiting for its redirect on \(busy.redirectURI); an agent runs one connect at a "
                    + "time: cancel it ($/cancelRequest) or let it end")
        }
        defer { loopbackConnect.release() }
        return try await withTaskCancellationHandler {
            try await listen(
                for: events, target: target, options: options, key: key, timeoutSeconds: timeoutSeconds,
                context: context)
        } onCancel: { [loopbackConnect] in
            loopbackConnect.cancel()
        }
    }

    /// The part of `connect` that holds the slot: the port, the URL, the wait, the page, the answer.
    private func listen(
        for events: AsyncStream<LoopbackConnectEvent>, target: LoopbackRedirectURI, options: ConnectOptions,
        key: String?, timeoutSeconds: Double, context: PeerContext
    ) async throws -> TokenSummary {
        let listener: LoopbackListener
        do {
            listener = try LoopbackListener(port: target.port)
        } catch {
            throw AgentError.portUnavailable(
                "connect cannot listen on 127.0.0.1:\(error.port) for the redirect (\(error.reason)): use another "
                    + "port in the redirect URI, or port 0 for any free one",
                redirectURI: target.uri(port: target.port))
        }
        let redirectURI = target.uri(port: listener.port)
        loopbackConnect.listening(on: redirectURI)
        var asked = options
        asked.redirectURI = redirectURI
        let url: String
        let state: String
        do {
            (url, state) = try await connectURL(asked, key: key)
        } catch {
            await listener.stop()
            throw error
        }
        listener.start { [loopbackConnect] head in
            Self.route(head, path: target.path, state: state, slot: loopbackConnect)
        }
        let timer = Task { [loopbackConnect] in
            try? await Task.sleep(for: .seconds(timeoutSeconds))
            if !Task.isCancelled { loopbackConnect.timeOut() }
        }
        context.notify(
            Connect.urlNotification,
            ["key": key.map { .string($0) } ?? .null, "url": .string(url), "redirectURI": .string(redirectURI)])
        setup.logger.notice("connect: waiting up to \(Int(timeoutSeconds)) s for Connect's redirect to \(redirectURI)")
        let outcome: Result<TokenSummary, any Error>
        var iterator = events.makeAsyncIterator()
        switch await iterator.next() {
        case .redirect(let head)?:
            do {
                let summary = try await completeRedirect(
                    url: "http://127.0.0.1:\(listener.port)\(head.path)?\(head.query)", key: key)
                listener.answerHeld(.connected(key: summary.key))
                outcome = .success(summary)
            } catch {
                listener.answerHeld(.notConnected(responseError(for: error, from: Connect.self).message))
                outcome = .failure(error)
            }
        case .timedOut?:
            outcome = .failure(
                AgentError.connectTimeout(
                    "no redirect came to \(redirectURI) within \(Int(timeoutSeconds)) s; run connect again",
                    redirectURI: redirectURI, seconds: timeoutSeconds))
        case .inputEnded?:
            outcome = .failure(
                ErrorKind.cancelled.responseError("connect cancelled: the client closed its input before the redirect"))
        case nil:
            outcome = .failure(CancellationError())
        }
        timer.cancel()
        await listener.stop()
        setup.logger.notice("connect: stopped listening on \(redirectURI)")
        return try outcome.get()
    }

    /// Decides, on the listener's thread, what one request gets: only a `GET` of the redirect URI's path whose
    /// `state` is this connect's is the redirect (held until the code is exchanged); anything else is answered
    /// at once and the wait goes on, so a stray or hostile request cannot end the flow.
    private static func route(
        _ head: LoopbackRequestHead, path: String, state: String, slot: LoopbackConnectSlot
    ) -> LoopbackListener.Route {
        guard head.path == path else { return .page(.notFound) }
        guard head.method == "GET" else {
            return .page(LoopbackPage(status: 405, title: "Method not allowed", message: "Only GET comes here."))
        }
        guard FormCoding.decodeDictionary(head.query)["state"] == state else {
            return .page(
                LoopbackPage(
                    status: 400, title: "Not this sign-in",
                    message: "This is not the redirect this sign-in waits for (its state differs). "
                        + "Open the link the terminal shows."))
        }
        guard slot.takeRedirect(head) else {
            return .page(
                LoopbackPage(status: 409, title: "Already handled", message: "This sign-in already had its redirect."))
        }
        return .hold
    }
}
