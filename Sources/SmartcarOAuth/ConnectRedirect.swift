import Foundation
import WireFormats

/// Where Connect sent the user's browser back to: an authorization code, or an error.
///
/// `description` hides the code (single-use, but a secret until exchanged).
package enum ConnectRedirect: Sendable, Equatable, CustomStringConvertible {
    case code(code: String, state: String?)
    /// `error` such as `access_denied`; `extra` holds `vin`, `make`, `model`, `year` when Connect sent them
    /// (with `vehicle_incompatible`).
    case error(error: String, description: String?, state: String?, extra: [String: String])

    /// The parameters Connect adds next to `error` about the vehicle it refused.
    static let extraNames = ["vin", "make", "model", "year"]

    /// Parses the full redirect URL (`https://app.example/callback?code=...&state=...`); the query is
    /// decoded like a form (`+` is a space). A URL without `code` or `error` is an `invalidParams` error.
    package static func parse(_ url: String) throws(SmartcarError) -> ConnectRedirect {
        let trimmed = url.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, let components = URLComponents(string: trimmed) else {
            throw .invalidArgument("the redirect URL is not a valid URL")
        }
        guard let query = components.percentEncodedQuery, !query.isEmpty else {
            throw .invalidArgument(
                "the redirect URL has no query: expected ?code=...&state=... or ?error=... from Smartcar Connect")
        }
        var parameters: [String: String] = [:]
        for (name, value) in FormCoding.decode(query) where parameters[name] == nil {
            parameters[name] = value
        }
        let state = parameters["state"].flatMap { $0.isEmpty ? nil : $0 }
        if let error = parameters["error"], !error.isEmpty {
            let description = parameters["error_description"].flatMap { $0.isEmpty ? nil : $0 }
            let extra = parameters.filter { extraNames.contains($0.key) && !$0.value.isEmpty }
            return .error(error: error, description: description, state: state, extra: extra)
        }
        if let code = parameters["code"], !code.isEmpty {
            return .code(code: code, state: state)
        }
        throw .invalidArgument("the redirect URL has neither a code nor an error parameter")
    }

    package var state: String? {
        switch self {
        case .code(_, let state), .error(_, _, let state, _): state
        }
    }

    /// For an `.error` redirect, the `connectError` to report (`data.error`, `data.description`, and the
    /// vehicle fields); nil for a code.
    package var connectError: SmartcarError? {
        guard case .error(let error, let description, _, let extra) = self else { return nil }
        var details: [String: JSONValue] = ["error": .string(error)]
        if let description { details["description"] = .string(description) }
        for (name, value) in extra { details[name] = .string(value) }
        let message = "Smartcar Connect returned \(error)" + (description.map { ": \($0)" } ?? "")
        return SmartcarError(.connectError, message, details: details)
    }

    package var description: String {
        switch self {
        case .code(_, let state): "ConnectRedirect.code(code: <redacted>, state: \(state ?? "nil"))"
        case .error(let error, let description, let state, let extra):
            "ConnectRedirect.error(\(error), \(description ?? "nil"), state: \(state ?? "nil"), \(extra))"
        }
    }
}
