import Foundation
import WireFormats

/// Turns the last failed attempt into the error the agent reports (kinds from the contract's error table).
extension SmartcarClient {
    func mapFailure(
        _ failure: AttemptFailure, _ operation: SmartcarCall, attempts: Int, redactor: Redactor
    ) -> SmartcarError {
        var error: SmartcarError
        switch failure {
        case .transport(let transportError): error = mapTransportError(transportError, operation)
        case .status(let response): error = mapStatus(response, operation, redactor: redactor)
        }
        if attempts > 1 { error.details["retried"] = .int(Int64(attempts - 1)) }
        return error
    }

    /// A 200 whose body is not a usable answer. For a single-use request Smartcar did process it.
    /// `rotatedRefreshToken`: the refresh token the unusable answer carried (see `SmartcarError`).
    func malformedAnswer(
        _ response: HTTPResponse, _ operation: SmartcarCall, reason: String, rotatedRefreshToken: String? = nil
    ) -> SmartcarError {
        var message = "Smartcar answered the \(operation.name) with \(response.status) but \(reason)"
        var details: [String: JSONValue] = [
            "status": .int(Int64(response.status)), "description": .string("malformed response: \(reason)"),
        ]
        if let requestID = response.header("sc-request-id") { details["requestId"] = .string(requestID) }
        if let note = operation.mayHaveReachedServerNote {
            message += "; \(note)"
            details["mayHaveReachedServer"] = .bool(true)
        }
        if rotatedRefreshToken != nil {
            message += "; it carried a rotated refresh token, which replaces the one sent"
            details["refreshTokenRotated"] = .bool(true)
        }
        return SmartcarError(.upstreamError, message, details: details, rotatedRefreshToken: rotatedRefreshToken)
    }

    private func mapTransportError(_ error: TransportError, _ operation: SmartcarCall) -> SmartcarError {
        var message: String
        switch error.kind {
        case .cannotConnect: message = "could not connect to Smartcar for the \(operation.name) (\(error.detail))"
        case .timedOut: message = "Smartcar did not answer the \(operation.name) within \(configuration.requestTimeout)"
        case .connectionLost: message = "the connection to Smartcar broke before the \(operation.name) was answered"
        case .secureConnectionFailed:
            message = "the TLS connection to Smartcar failed for the \(operation.name) (\(error.detail))"
        case .other: message = "the \(operation.name) failed on the network (\(error.detail))"
        case .oversizedAnswer:
            message = "Smartcar answered the \(operation.name) with a body over the 1 MiB cap, which was not read"
        }
        var details: [String: JSONValue] = ["network": .string(error.kind.rawValue)]
        if operation.isSingleUse {
            details["mayHaveReachedServer"] = .bool(error.mayHaveReachedServer)
            if error.mayHaveReachedServer, let note = operation.mayHaveReachedServerNote { message += "; \(note)" }
        }
        return SmartcarError(
            error.kind == .oversizedAnswer ? .upstreamError : .upstreamUnavailable, message, details: details)
    }

    private func mapStatus(_ response: HTTPResponse, _ operation: SmartcarCall, redactor: Redactor) -> SmartcarError {
        var body = UpstreamErrorBody(response, redactor: redactor)
        let status = response.status
        if status == 401, body.error == nil, operation.sendsClientCredentials {
            body.error = "invalid_client"  // a bare 401 (a proxy's, or a Basic challenge without a body)
        }
        var details = body.details
        let what = body.summary.map { "\(status) \($0)" } ?? String(status)

        if status == 429 {
            var message = "Smartcar rate-limited the \(operation.name) (\(what))"
            if let delay = RetryAfter.delay(response.header("retry-after"), now: clock.now()) {
                let seconds = RetryAfter.seconds(delay)
                details["retryAfter"] = .int(seconds)
                message += "; retry after \(seconds) s"
            }
            return SmartcarError(.rateLimited, message, details: details)
        }
        if (500...599).contains(status) {
            var message = "Smartcar is unavailable: it answered the \(operation.name) with \(what)"
            if let note = operation.mayHaveReachedServerNote {
                message += "; \(note)"
                details["mayHaveReachedServer"] = .bool(true)
            }
            return SmartcarError(.upstreamUnavailable, message, details: details)
        }
        if body.error == "invalid_client", (400...499).contains(status) {
            return SmartcarError(
                .invalidClient,
                "Smartcar refused the client credentials (\(what)); check SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET",
                details: details)
        }
        if operation == .exchange, status == 400 || status == 401,
            body.error == "invalid_grant" || body.error == "invalid_request"
        {
            return SmartcarError(
                .invalidGrant, "Smartcar refused the authorization code (\(what)); ask the user to connect again",
                details: details)
        }
        if operation == .refresh, status == 400 || status == 401, body.error == "invalid_grant" {
            return SmartcarError(
                .reauthRequired, "Smartcar refused the refresh token (\(what)); the user must connect again",
                details: details)
        }
        if (300...399).contains(status) {
            return SmartcarError(
                .upstreamError,
                "Smartcar answered the \(operation.name) with a redirect (\(status)), which the agent does not follow",
                details: details)
        }
        return SmartcarError(.upstreamError, "Smartcar refused the \(operation.name) (\(what))", details: details)
    }
}
