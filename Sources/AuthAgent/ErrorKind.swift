import JSONRPC
import SmartcarOAuth
import WireFormats

/// The protocol's error table (Protocol/README.md, "Errors"): every `data.kind` a method may answer, with its
/// JSON-RPC code. Domain errors are mapped to a kind here and nowhere else.
enum ErrorKind: String, CaseIterable, Sendable {
    case invalidRequest, invalidParams, internalError, cancelled
    case configurationError, invalidClient, invalidGrant, reauthRequired, rateLimited, upstreamUnavailable
    case upstreamError, stateMismatch, connectError, unknownKey, storageError, portUnavailable, connectTimeout

    var code: Int {
        switch self {
        case .invalidRequest: ResponseError.Code.invalidRequest
        case .invalidParams: ResponseError.Code.invalidParams
        case .internalError: ResponseError.Code.internalError
        case .cancelled: ResponseError.Code.requestCancelled
        case .configurationError: -32001
        case .invalidClient: -32002
        case .invalidGrant: -32003
        case .reauthRequired: -32004
        case .rateLimited: -32005
        case .upstreamUnavailable: -32006
        case .upstreamError: -32007
        case .stateMismatch: -32008
        case .connectError: -32009
        case .unknownKey: -32010
        case .storageError: -32011
        case .portUnavailable: -32012
        case .connectTimeout: -32013
        }
    }

    /// The kinds any method may answer: bad params, a request after `shutdown`, cancellation, a bug.
    static let common: Set<ErrorKind> = [.invalidRequest, .invalidParams, .internalError, .cancelled]

    /// The kinds a call to Smartcar may end in.
    static let upstream: Set<ErrorKind> = [
        .configurationError, .invalidClient, .rateLimited, .upstreamUnavailable, .upstreamError,
    ]

    init(_ kind: SmartcarError.Kind) {
        switch kind {
        case .configurationError: self = .configurationError
        case .invalidClient: self = .invalidClient
        case .invalidGrant: self = .invalidGrant
        case .reauthRequired: self = .reauthRequired
        case .rateLimited: self = .rateLimited
        case .upstreamUnavailable: self = .upstreamUnavailable
        case .upstreamError: self = .upstreamError
        case .connectError: self = .connectError
        case .invalidArgument: self = .invalidParams
        case .cancelled: self = .cancelled
        }
    }

    /// The error a client sees: this kind's code, `message`, and `data` = `details` plus `kind`.
    func responseError(_ message: String, details: [String: JSONValue] = [:]) -> ResponseError {
        var data = details
        data["kind"] = .string(rawValue)
        return ResponseError(code: code, message: message, data: .object(data))
    }
}

extension Agent {
    /// Maps any failure of `method` to the error a client sees; never includes a secret.
    func responseError(for error: any Error, from method: any AgentMethod.Type) -> ResponseError {
        let response = responseError(for: error)
        if let kind = response.data?["kind"]?.stringValue.flatMap(ErrorKind.init(rawValue:)) {
            assert(
                ErrorKind.common.contains(kind) || method.errors.contains(kind),
                "\(method.name) answered undeclared \(kind)")
        }
        return response
    }

    private func responseError(for error: any Error) -> ResponseError {
        switch error {
        case let error as ResponseError:
            return error
        case let error as SmartcarError:
            return ErrorKind(error.kind).responseError(error.message, details: error.details)
        case let error as AgentError:
            return responseError(for: error)
        case is CancellationError:
            return .cancelled
        default:
            setup.logger.error("internal error: \(type(of: error))")
            return .internalError("internal error")
        }
    }

    private func responseError(for error: AgentError) -> ResponseError {
        switch error {
        case .invalidParams(let message):
            return ErrorKind.invalidParams.responseError(message)
        case .invalidRequest(let message):
            return ErrorKind.invalidRequest.responseError(message)
        case .stateMismatch(let message):
            return ErrorKind.stateMismatch.responseError(message)
        case .unknownKey(let key, otherApplication: false):
            let message = "no tokens are stored for key '\(key)'; connect the vehicle first"
            return ErrorKind.unknownKey.responseError(message, details: ["key": .string(key)])
        case .unknownKey(let key, otherApplication: true):
            let message =
                "key '\(key)' belongs to another application (client id) on this token store, not to this agent's; connect the vehicle with this application first"
            return ErrorKind.unknownKey.responseError(
                message, details: ["key": .string(key), "otherApplication": true])
        case .reauthRequired(let key, let reason, let upstream):
            let message = "\(reason); the user must go through Connect again for key '\(key)'"
            let details = (upstream?.details ?? [:]).merging(["key": .string(key)]) { _, new in new }
            return ErrorKind.reauthRequired.responseError(message, details: details)
        case .storage(let underlying):
            return ErrorKind.storageError.responseError("the token store failed: \(underlying)")
        case .portUnavailable(let message, let redirectURI):
            return ErrorKind.portUnavailable.responseError(message, details: ["redirectURI": .string(redirectURI)])
        case .connectTimeout(let message, let redirectURI, let seconds):
            return ErrorKind.connectTimeout.responseError(
                message, details: ["redirectURI": .string(redirectURI), "timeout": .double(seconds)])
        }
    }

    /// `response` with a fresh Connect URL (whose state, issued in the store, remembers the key) when it asks
    /// for Connect (`unknownKey`, `reauthRequired`): with the Connect options the key's grant was connected
    /// with, when it has a row, so the user grants the same access in the same mode again.
    func withConnectURL(_ response: ResponseError) async -> ResponseError {
        let asksForConnect = [ErrorKind.unknownKey, .reauthRequired].map { JSONValue.string($0.rawValue) }
        guard case .object(var data)? = response.data, let kind = data["kind"], asksForConnect.contains(kind),
            let key = data["key"]?.stringValue
        else { return response }
        let row = try? await setup.store.load(key)
        guard let (url, _) = try? await connectURL(ConnectStateRecord.options(row?.connectOptions), key: key)
        else { return response }
        data["connectURL"] = .string(url)
        var answered = response
        answered.data = .object(data)
        return answered
    }
}
