import FakeSmartcar
import Sealing
import TokenStore

extension FakeSmartcar {
    /// The redirect URI the fake's test app is registered with.
    package static let redirectURI = "http://localhost:8000/callback"

    /// The environment that points an agent at this fake with its credentials.
    package var agentEnvironment: [String: String] {
        let origin = self.origin.absoluteString
        return [
            "SMARTCAR_CLIENT_ID": options.clientID, "SMARTCAR_CLIENT_SECRET": options.clientSecret,
            "SMARTCAR_REDIRECT_URI": FakeSmartcar.redirectURI,
            "SMARTCAR_CONNECT_ORIGIN": origin, "SMARTCAR_AUTH_ORIGIN": origin,
            "SMARTCAR_IAM_ORIGIN": origin, "SMARTCAR_API_ORIGIN": origin,
        ]
    }
}

extension FakeSmartcar.Options {
    /// What an agent given these credentials seals its store with: a test reads that store with the same.
    package var storeSecrets: StoreSecrets {
        StoreSecrets(current: .clientSecret(SecretBytes(Array(clientSecret.utf8))))
    }
}
