import Foundation
import Testing

@testable import SmartcarOAuth

@Suite("Connect redirect")
struct ConnectRedirectTests {
    @Test func code() throws {
        let redirect = try ConnectRedirect.parse("https://app.example/callback?code=35a59c0b-745c&state=0facda3319")
        #expect(redirect == .code(code: "35a59c0b-745c", state: "0facda3319"))
        #expect(redirect.state == "0facda3319")
        #expect(redirect.connectError == nil)
        #expect(!redirect.description.contains("35a59c0b"))
    }

    @Test func codeWithoutStateAndWithFragment() throws {
        #expect(try ConnectRedirect.parse("http://localhost:8000/cb?code=abc#_=_") == .code(code: "abc", state: nil))
    }

    @Test func errorIsDecodedLikeAForm() throws {
        let redirect = try ConnectRedirect.parse(
            "http://localhost:8000/cb?error=access_denied&error_description=User+denied%20access&state=s%2B1")
        #expect(redirect == .error(error: "access_denied", description: "User denied access", state: "s+1", extra: [:]))
        let error = try #require(redirect.connectError)
        #expect(error.kind == .connectError)
        #expect(error.details == ["error": "access_denied", "description": "User denied access"])
        #expect(error.kind == .connectError)
    }

    @Test func vehicleIncompatibleCarriesTheVehicle() throws {
        let redirect = try ConnectRedirect.parse(
            "https://app.example/cb?error=vehicle_incompatible&error_description=nope&vin=5YJSA1E14FF101307&make=TESLA&model=Model+S&year=2015&state=x"
        )
        guard case .error(let error, _, let state, let extra) = redirect else { Issue.record("not an error"); return }
        #expect(error == "vehicle_incompatible" && state == "x")
        #expect(extra == ["vin": "5YJSA1E14FF101307", "make": "TESLA", "model": "Model S", "year": "2015"])
        #expect(redirect.connectError?.details["model"] == "Model S")
    }

    @Test func errorWinsOverCode() throws {
        guard case .error = try ConnectRedirect.parse("https://a.example/?code=c&error=server_error") else {
            Issue.record("expected the error"); return
        }
    }

    @Test(arguments: [
        "", "   ", "not a url at all", "https://app.example/callback", "https://app.example/callback?",
        "https://app.example/cb?state=s",
        "https://app.example/cb?code=&state=s", "http://[bad",
    ])
    func garbageIsAClearError(_ text: String) {
        #expect {
            _ = try ConnectRedirect.parse(text)
        } throws: { error in
            let error = error as! SmartcarError
            return error.kind == .invalidArgument && error.message.hasPrefix("the redirect URL")
        }
    }
}
