import Foundation
import WireFormats

/// Builds the Smartcar Connect URL the user opens in a browser.
///
/// Byte for byte what the Python SDK (6.19.1) emits: parameters in the order `response_type, client_id,
/// approval_prompt, mode, redirect_uri, scope, state, make, single_select_vin, single_select, flags, user`,
/// encoded like `urllib.parse.urlencode` (see `FormCoding`). Empty values are left out, as the SDK's
/// truthiness checks do.
package enum ConnectURL {
    package static func build(
        _ options: ConnectOptions, state: String, configuration: SmartcarConfiguration
    ) throws(SmartcarError) -> URL {
        let clientID = try configuration.requireClientID()
        var pairs: [(String, String)] = [
            ("response_type", "code"),
            ("client_id", clientID),
            ("approval_prompt", options.forcePrompt == true ? "force" : "auto"),
            ("mode", (options.mode ?? configuration.mode).rawValue),
        ]
        if let redirectURI = nonEmpty(options.redirectURI) ?? nonEmpty(configuration.redirectURI) {
            pairs.append(("redirect_uri", redirectURI))
        }
        if let scope = options.scope, !scope.isEmpty {
            pairs.append(("scope", scope.joined(separator: " ")))
        }
        if !state.isEmpty { pairs.append(("state", state)) }
        if let make = nonEmpty(options.make) { pairs.append(("make", make)) }
        if let vin = nonEmpty(options.singleSelectVIN) {
            pairs.append(("single_select_vin", vin))
            pairs.append(("single_select", "true"))
        } else if let singleSelect = options.singleSelect {
            pairs.append(("single_select", singleSelect ? "true" : "false"))
        }
        if let flags = options.flags, !flags.isEmpty { pairs.append(("flags", flags.parameterValue)) }
        if let user = nonEmpty(options.user) { pairs.append(("user", user)) }

        let text = configuration.connectOrigin.absoluteString + "/oauth/authorize?" + FormCoding.encode(pairs)
        guard let url = URL(string: text) else {
            throw .configuration("SMARTCAR_CONNECT_ORIGIN does not make a valid Connect URL")
        }
        return url
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }
}
