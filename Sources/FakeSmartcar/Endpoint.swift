/// The Smartcar endpoints the fake serves; control paths (`/_fake/...`) are not endpoints.
package enum Endpoint: String, Sendable, Codable, CaseIterable {
    /// `GET /oauth/authorize` (Connect, normally on connect.smartcar.com).
    case authorize
    /// `POST /oauth/token`: code exchange and refresh (auth.smartcar.com).
    case token
    /// `POST /oauth2/token`: application token, client credentials (iam.smartcar.com).
    case appToken
    /// `GET /v2.0/user` (api.smartcar.com).
    case user

    /// The request path; every endpoint lives on the fake's single origin.
    package var path: String {
        switch self {
        case .authorize: "/oauth/authorize"
        case .token: "/oauth/token"
        case .appToken: "/oauth2/token"
        case .user: "/v2.0/user"
        }
    }

    init?(path: String) {
        guard let match = Endpoint.allCases.first(where: { $0.path == path }) else { return nil }
        self = match
    }
}
