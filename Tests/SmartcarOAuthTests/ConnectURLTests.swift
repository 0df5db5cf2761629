import Foundation
import Testing

@testable import SmartcarOAuth

/// One Connect URL case. Expected URLs come from the Python SDK's rules in FACTS.md (parameter order,
/// `urllib.parse.urlencode`), cross-checked by running `urlencode` on the same inputs.
struct ConnectCase: Sendable, CustomTestStringConvertible {
    var name: String
    var options = ConnectOptions()
    var state = "s"
    var configuration = SmartcarConfiguration(clientID: "CID")
    var expected: String
    var testDescription: String { name }
}

private let base = "https://connect.smartcar.com/oauth/authorize?response_type=code&client_id=CID"

private let connectCases: [ConnectCase] = [
    ConnectCase(
        name: "FACTS.md example, verbatim",
        options: ConnectOptions(
            scope: ["read_odometer", "read_vehicle_info"], redirectURI: "https://example.com/home",
            mode: .test, forcePrompt: true, make: "TESLA", singleSelectVIN: "5YJSA1E14FF101307",
            flags: ["country": "DE", "color": "00819D", "b": true], user: "61a3e3d2"),
        state: "0facda3319",
        expected:
            "https://connect.smartcar.com/oauth/authorize?response_type=code&client_id=CID&approval_prompt=force&mode=test&redirect_uri=https%3A%2F%2Fexample.com%2Fhome&scope=read_odometer+read_vehicle_info&state=0facda3319&make=TESLA&single_select_vin=5YJSA1E14FF101307&single_select=true&flags=country%3ADE+color%3A00819D+b%3Atrue&user=61a3e3d2"
    ),
    ConnectCase(name: "minimal", expected: "\(base)&approval_prompt=auto&mode=live&state=s"),
    ConnectCase(name: "empty state omitted", state: "", expected: "\(base)&approval_prompt=auto&mode=live"),
    ConnectCase(
        name: "configured redirect",
        configuration: SmartcarConfiguration(clientID: "CID", redirectURI: "https://app.example/cb"),
        expected: "\(base)&approval_prompt=auto&mode=live&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s"),
    ConnectCase(
        name: "option redirect wins over configured",
        options: ConnectOptions(redirectURI: "http://localhost:8000/callback"),
        configuration: SmartcarConfiguration(clientID: "CID", redirectURI: "https://app.example/cb"),
        expected: "\(base)&approval_prompt=auto&mode=live&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fcallback&state=s"
    ),
    ConnectCase(
        name: "mode from options", options: ConnectOptions(mode: .simulated),
        configuration: SmartcarConfiguration(clientID: "CID", mode: .test),
        expected: "\(base)&approval_prompt=auto&mode=simulated&state=s"),
    ConnectCase(
        name: "forcePrompt false is auto", options: ConnectOptions(forcePrompt: false),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s"),
    ConnectCase(
        name: "required: scope prefix", options: ConnectOptions(scope: ["required:read_location", "read_vin"]),
        expected: "\(base)&approval_prompt=auto&mode=live&scope=required%3Aread_location+read_vin&state=s"),
    ConnectCase(
        name: "empty scope omitted", options: ConnectOptions(scope: []),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s"),
    ConnectCase(
        name: "single_select alone, true", options: ConnectOptions(singleSelect: true),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s&single_select=true"),
    ConnectCase(
        name: "single_select alone, false", options: ConnectOptions(singleSelect: false),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s&single_select=false"),
    ConnectCase(
        name: "VIN implies single_select=true over false",
        options: ConnectOptions(singleSelect: false, singleSelectVIN: "1HGCM82633A004352"),
        expected:
            "\(base)&approval_prompt=auto&mode=live&state=s&single_select_vin=1HGCM82633A004352&single_select=true"),
    ConnectCase(
        name: "empty VIN ignored", options: ConnectOptions(singleSelect: true, singleSelectVIN: ""),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s&single_select=true"),
    ConnectCase(
        name: "make with a space", options: ConnectOptions(make: "MERCEDES BENZ"),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s&make=MERCEDES+BENZ"),
    ConnectCase(
        name: "numeric flags as written", options: ConnectOptions(flags: ["limit": 10, "ratio": 1.5]),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s&flags=limit%3A10+ratio%3A1.5"),
    ConnectCase(
        name: "false flag lower-case", options: ConnectOptions(flags: ["x": false]),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s&flags=x%3Afalse"),
    ConnectCase(
        name: "flag value with a space", options: ConnectOptions(flags: ["note": "a b"]),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s&flags=note%3Aa+b"),
    ConnectCase(
        name: "empty flags omitted", options: ConnectOptions(flags: FeatureFlags([])),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s"),
    ConnectCase(
        name: "user with @", options: ConnectOptions(user: "owner@example.com"),
        expected: "\(base)&approval_prompt=auto&mode=live&state=s&user=owner%40example.com"),
    ConnectCase(
        name: "non-ASCII state as UTF-8", state: "\u{E9}\u{2603}",
        expected: "\(base)&approval_prompt=auto&mode=live&state=%C3%A9%E2%98%83"),
    ConnectCase(
        name: "redirect with its own query", options: ConnectOptions(redirectURI: "http://localhost:8000/cb?x=1&y=2"),
        expected:
            "\(base)&approval_prompt=auto&mode=live&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fcb%3Fx%3D1%26y%3D2&state=s"
    ),
    ConnectCase(
        name: "unreserved characters kept", state: "a-b_c.d~e",
        expected: "\(base)&approval_prompt=auto&mode=live&state=a-b_c.d~e"),
    ConnectCase(
        name: "reserved characters escaped", state: "a+b/c=d&e?f#g%h",
        expected: "\(base)&approval_prompt=auto&mode=live&state=a%2Bb%2Fc%3Dd%26e%3Ff%23g%25h"),
    ConnectCase(
        name: "loopback Connect origin",
        configuration: SmartcarConfiguration(clientID: "CID", connectOrigin: URL(string: "http://127.0.0.1:8080")!),
        expected:
            "http://127.0.0.1:8080/oauth/authorize?response_type=code&client_id=CID&approval_prompt=auto&mode=live&state=s"
    ),
    ConnectCase(
        name: "client id escaped", configuration: SmartcarConfiguration(clientID: "id with/slash"),
        expected:
            "https://connect.smartcar.com/oauth/authorize?response_type=code&client_id=id+with%2Fslash&approval_prompt=auto&mode=live&state=s"
    ),
    ConnectCase(
        name: "everything but a VIN, mode from configuration",
        options: ConnectOptions(
            scope: ["read_battery"], redirectURI: "https://example.com/home", make: "BMW",
            singleSelect: true, flags: ["country": "GB"], user: "u1"),
        state: "st", configuration: SmartcarConfiguration(clientID: "CID", mode: .test),
        expected:
            "\(base)&approval_prompt=auto&mode=test&redirect_uri=https%3A%2F%2Fexample.com%2Fhome&scope=read_battery&state=st&make=BMW&single_select=true&flags=country%3AGB&user=u1"
    ),
]

@Suite("Connect URL")
struct ConnectURLTests {
    @Test(arguments: connectCases)
    func matchesPythonSDK(_ row: ConnectCase) throws {
        let url = try ConnectURL.build(row.options, state: row.state, configuration: row.configuration)
        #expect(url.absoluteString == row.expected)
    }

    @Test func missingClientIDIsAConfigurationError() {
        #expect {
            _ = try ConnectURL.build(ConnectOptions(), state: "s", configuration: SmartcarConfiguration())
        } throws: { error in
            let error = error as! SmartcarError
            return error.kind == .configurationError
                && error.message == "SMARTCAR_CLIENT_ID is not set (set it in the agent's environment)"
        }
    }

    @Test func optionsStateIsNotSent() throws {
        let url = try ConnectURL.build(
            ConnectOptions(state: "callers-own"), state: "agent-state",
            configuration: SmartcarConfiguration(clientID: "CID"))
        #expect(url.absoluteString == "\(base)&approval_prompt=auto&mode=live&state=agent-state")
    }

    @Test func flagsDecodedFromJSONAreSortedByName() throws {
        let options = try JSONDecoder().decode(
            ConnectOptions.self, from: Data(#"{"flags":{"z":1,"a":true,"m":"x y"}}"#.utf8))
        #expect(options.flags?.parameterValue == "a:true m:x y z:1")
    }
}
