import Foundation

/// One attempt's failure: the network let us down, or Smartcar answered something other than 2xx.
enum AttemptFailure: Sendable {
    case transport(TransportError)
    case status(HTTPResponse)
}

extension SmartcarClient {
    /// Sends `request` until it succeeds (2xx), fails for good, or the call's budget runs out, retrying only
    /// what `operation` allows; returns the 2xx answer or throws the mapped error of the last attempt.
    func send(
        _ request: HTTPRequest, _ operation: SmartcarCall, redactor: Redactor
    ) async throws(SmartcarError) -> HTTPResponse {
        let monotonic = ContinuousClock()
        let started = monotonic.now
        let deadline = started + configuration.requestTimeout
        var attempt = 0
        while true {
            attempt += 1
            let failure: AttemptFailure
            do {
                let response = try await transport.send(request, timeout: deadline - monotonic.now)
                logger.debug(
                    "\(request) (\(operation.name)) -> \(response.status) in \(monotonic.now - started), attempt \(attempt)"
                )
                if (200..<300).contains(response.status) { return response }
                failure = .status(response)
            } catch let error as TransportError {
                logger.debug("\(request) (\(operation.name)) -> \(error), attempt \(attempt)")
                failure = .transport(error)
            } catch is CancellationError {
                throw .cancelled
            } catch {
                failure = .transport(TransportError(.other, detail: String(describing: type(of: error))))
            }
            if Task.isCancelled { throw .cancelled }

            guard attempt < retry.maxAttempts, let pause = retryPause(after: failure, operation, attempt: attempt)
            else {
                throw mapFailure(failure, operation, attempts: attempt, redactor: redactor)
            }
            guard pause < deadline - monotonic.now else {
                logger.info("\(operation.name): not retrying, the pause (\(pause)) would outlast the request budget")
                throw mapFailure(failure, operation, attempts: attempt, redactor: redactor)
            }
            logger.info(
                "\(operation.name): \(failure.summary), retrying in \(pause) (attempt \(attempt + 1) of \(retry.maxAttempts))"
            )
            do { try await retry.sleep(pause) } catch { throw .cancelled }
            guard deadline > monotonic.now else {
                throw mapFailure(failure, operation, attempts: attempt, redactor: redactor)
            }
        }
    }

    /// How long to wait before retrying, or nil when this failure must not be retried for this operation.
    func retryPause(after failure: AttemptFailure, _ operation: SmartcarCall, attempt: Int) -> Duration? {
        switch failure {
        case .transport(let error):
            switch error.kind {
            case .cannotConnect: return retry.backoff(afterAttempt: attempt)
            case .timedOut, .connectionLost: return operation.isSingleUse ? nil : retry.backoff(afterAttempt: attempt)
            case .secureConnectionFailed, .oversizedAnswer, .other: return nil
            }
        case .status(let response):
            let retryAfter = RetryAfter.delay(response.header("retry-after"), now: clock.now())
            if response.status == 429 { return retryAfter ?? retry.backoff(afterAttempt: attempt) }
            if (500...599).contains(response.status), !operation.isSingleUse {
                return retryAfter ?? retry.backoff(afterAttempt: attempt)
            }
            return nil
        }
    }
}

extension AttemptFailure {
    /// For log lines: status or network failure, never a body.
    var summary: String {
        switch self {
        case .transport(let error): "network failure \(error)"
        case .status(let response): "Smartcar answered \(response.status)"
        }
    }
}
