import FakeSmartcar

/// `--sandbox`: the agent points itself at a fake Smartcar it starts in-process, with made-up credentials,
/// so a newcomer can try Connect, the code exchange and getToken without an account or a network.
enum Sandbox {
    static let redirectURI = "http://localhost:8000/callback"

    static func environment(for fake: FakeSmartcar) -> [String: String] {
        let origin = fake.origin.absoluteString
        return [
            "SMARTCAR_CLIENT_ID": fake.options.clientID,
            "SMARTCAR_CLIENT_SECRET": fake.options.clientSecret,
            "SMARTCAR_REDIRECT_URI": redirectURI,
            "SMARTCAR_CONNECT_ORIGIN": origin,
            "SMARTCAR_AUTH_ORIGIN": origin,
            "SMARTCAR_IAM_ORIGIN": origin,
            "SMARTCAR_API_ORIGIN": origin,
        ]
    }
}
