import FakeSmartcar
import TokenStore

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

    /// The sandbox's store: `--store` or `SMARTCAR_AUTH_STORE`, as for any agent; memory when neither is given
    /// (a trial should not write into the default store).
    static func store(options: CommandLineOptions, environment: [String: String]) -> String {
        options.store ?? environment["SMARTCAR_AUTH_STORE"].flatMap { $0.isEmpty ? nil : $0 } ?? "memory"
    }

    /// Makes `fake` accept every grant in `store`. Each run of the agent starts a new fake; without this, the
    /// grants an earlier run's fake issued (through a durable store, e.g. one `smartcar-auth` command after another)
    /// would be unknown to it and end in `reauthRequired`. Returns how many it adopted.
    static func adoptGrants(of store: any TokenStore, into fake: FakeSmartcar) async throws(StoreError) -> Int {
        let rows = try await store.list()
        for row in rows {
            fake.adoptGrant(
                userID: "sandbox-user-" + row.key, accessToken: row.accessToken, accessExpiresAt: row.expiresAt,
                refreshToken: row.refreshToken)
        }
        return rows.count
    }
}
