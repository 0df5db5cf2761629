import AgentTestSupport
import Foundation
import Testing

@testable import SmartcarOAuth

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Configuration")
struct ConfigurationTests {
    private func configurationError(_ env: [String: String], secretFile: String? = nil) -> SmartcarError? {
        do { _ = try SmartcarConfiguration.fromEnvironment(env, secretFile: secretFile); return nil } catch {
            return error
        }
    }

    @Test func defaults() throws {
        let configuration = try SmartcarConfiguration.fromEnvironment([:])
        #expect(configuration == SmartcarConfiguration())
        #expect(configuration.mode == .live)
        #expect(configuration.authOrigin.absoluteString == "https://auth.smartcar.com")
        #expect(configuration.connectOrigin.absoluteString == "https://connect.smartcar.com")
        #expect(configuration.iamOrigin.absoluteString == "https://iam.smartcar.com")
        #expect(configuration.apiOrigin.absoluteString == "https://api.smartcar.com")
        #expect(configuration.requestTimeout == .seconds(30))
        #expect(configuration.clientID == nil && configuration.clientSecret == nil && configuration.redirectURI == nil)
    }

    @Test func readsEverything() throws {
        let configuration = try SmartcarConfiguration.fromEnvironment([
            "SMARTCAR_CLIENT_ID": "id", "SMARTCAR_CLIENT_SECRET": "secret",
            "SMARTCAR_REDIRECT_URI": "http://localhost:8000/cb",
            "SMARTCAR_MODE": "Simulated", "SMARTCAR_CONNECT_ORIGIN": "http://127.0.0.1:1/",
            "SMARTCAR_AUTH_ORIGIN": "http://127.0.0.1:2",
            "SMARTCAR_IAM_ORIGIN": "https://iam.example:8443", "SMARTCAR_API_ORIGIN": "http://localhost:4",
        ])
        #expect(configuration.clientID == "id" && configuration.clientSecret == "secret")
        #expect(configuration.redirectURI == "http://localhost:8000/cb")
        #expect(configuration.mode == .simulated)
        #expect(configuration.connectOrigin.absoluteString == "http://127.0.0.1:1")
        #expect(configuration.authOrigin.absoluteString == "http://127.0.0.1:2")
        #expect(configuration.iamOrigin.absoluteString == "https://iam.example:8443")
        #expect(configuration.apiOrigin.absoluteString == "http://localhost:4")
    }

    @Test func emptyVariablesCountAsUnset() throws {
        let configuration = try SmartcarConfiguration.fromEnvironment([
            "SMARTCAR_CLIENT_ID": "", "SMARTCAR_MODE": "", "SMARTCAR_AUTH_ORIGIN": "",
        ])
        #expect(configuration == SmartcarConfiguration())
    }

    @Test func badMode() {
        let error = configurationError(["SMARTCAR_MODE": "sandbox"])
        #expect(error?.kind == .configurationError)
        #expect(error?.message == "SMARTCAR_MODE must be live, test or simulated (got 'sandbox')")
    }

    @Test(arguments: [
        ("https://auth.smartcar.com/oauth/token", "without a path"),
        ("https://auth.smartcar.com?x=1", "without a query"),
        ("https://auth.smartcar.com/#frag", "without a query or fragment"),
        ("ftp://auth.smartcar.com", "must use https"),
        ("auth.smartcar.com", "must be an origin like"),
        ("https://user:pw@auth.smartcar.com", "user name or password"),
        ("", ""),
    ])
    func originsMustBeOrigins(_ value: String, _ complaint: String) {
        let error = configurationError(["SMARTCAR_AUTH_ORIGIN": value])
        if value.isEmpty { #expect(error == nil); return }
        #expect(error?.kind == .configurationError)
        #expect(error?.message.hasPrefix("SMARTCAR_AUTH_ORIGIN") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains(complaint) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("pw") == false)
    }

    @Test func pathErrorSaysSo() {
        let error = configurationError(["SMARTCAR_API_ORIGIN": "https://api.smartcar.com/v2.0"])
        #expect(
            error?.message
                == "SMARTCAR_API_ORIGIN must be an origin without a path (got path '/v2.0'); the agent appends the endpoint path itself"
        )
    }

    @Test func secretFileWinsAndLosesItsTrailingNewline() throws {
        let temporary = try TemporaryFolder("oauth-tests")
        let folder = temporary.url
        let file = folder.appendingPathComponent("secret")
        try Data("from-file\r\n".utf8).write(to: file)
        chmod(file.path, 0o600)
        let configuration = try SmartcarConfiguration.fromEnvironment(
            ["SMARTCAR_CLIENT_SECRET": "from-env"], secretFile: file.path)
        #expect(configuration.clientSecret == "from-file")
    }

    @Test func unreadableSecretFileNamesThePathNotTheContent() throws {
        let temporary = try TemporaryFolder("oauth-tests")
        let folder = temporary.url
        let missing = folder.appendingPathComponent("missing").path
        #expect(
            configurationError([:], secretFile: missing)?.message == "the client secret file \(missing) does not exist")
        // A folder exists but cannot be read as a file.
        #expect(
            configurationError([:], secretFile: folder.path)?.message
                == "the client secret file \(folder.path) cannot be read")
        let empty = folder.appendingPathComponent("empty")
        try Data("\n".utf8).write(to: empty)
        chmod(empty.path, 0o600)
        #expect(
            configurationError([:], secretFile: empty.path)?.message == "the client secret file \(empty.path) is empty")
        let binary = folder.appendingPathComponent("binary")
        try Data([0xFF, 0xFE, 0x41]).write(to: binary)
        chmod(binary.path, 0o600)
        let error = configurationError([:], secretFile: binary.path)
        #expect(error?.message == "the client secret file \(binary.path) is not UTF-8 text")
    }

    /// The secret file is held to the token store's rule (one checker, `PrivateFile`): any mode giving group or
    /// others access is refused with the store's kind of message and fix; owner-only modes are accepted.
    @Test func secretFileOpenToOthersIsRefusedLikeTheStore() throws {
        let temporary = try TemporaryFolder("oauth-tests")
        let file = temporary.file("secret")
        try Data("s3cr3t-value\n".utf8).write(to: URL(fileURLWithPath: file))
        var modes: [UInt32] = [0o644, 0o666, 0o640, 0o604, 0o620, 0o602, 0o600, 0o400]
        var random = SeededGenerator(seed: 12)
        for _ in 0..<64 { modes.append(0o400 | UInt32.random(in: 0...0o777, using: &random)) }
        for mode in modes {
            chmod(file, mode_t(mode))
            let error = configurationError([:], secretFile: file)
            let readable = mode & 0o044 != 0
            let writable = mode & 0o022 != 0
            if readable || writable {
                let access = readable && writable ? "readable and writable" : readable ? "readable" : "writable"
                #expect(
                    error?.message
                        == "refusing to use client secret file \(file): it is \(access) by group/others (mode \(String(format: "%04o", mode))); run chmod 600 \(file)",
                    "mode \(String(mode, radix: 8))")
                #expect(error?.message.contains("s3cr3t") == false)
            } else {
                #expect(error == nil, "mode \(String(mode, radix: 8))")
            }
        }
    }

    @Test func secretFileOwnedByAnotherUserIsRefused() throws {
        guard geteuid() == 0 else { return }  // only root can give a file away
        let temporary = try TemporaryFolder("oauth-tests")
        let file = temporary.file("secret")
        try Data("s3cr3t-value\n".utf8).write(to: URL(fileURLWithPath: file))
        chmod(file, 0o600)
        chown(file, 65534, 65534)
        #expect(
            configurationError([:], secretFile: file)?.message
                == "refusing to use client secret file \(file): it is owned by uid 65534, not by this user (uid 0)")
        // Through a symbolic link, the file it leads to is what is checked.
        let link = temporary.file("link")
        symlink(file, link)
        #expect(
            configurationError([:], secretFile: link)?.message.hasPrefix("refusing to use client secret file") == true)
        chown(file, 0, 0)
        #expect(configurationError([:], secretFile: link) == nil)
    }

    @Test func missingCredentialsFailTheCallNotTheConstruction() async throws {
        let client = SmartcarClient(
            configuration: try SmartcarConfiguration.fromEnvironment([:]), transport: UnreachableTransport())
        let noID = await smartcarError { () async throws(SmartcarError) in try await client.applicationToken() }
        #expect(noID?.kind == .configurationError)
        #expect(noID?.message == "SMARTCAR_CLIENT_ID is not set (set it in the agent's environment)")
        let idOnly = SmartcarClient(
            configuration: SmartcarConfiguration(clientID: "id"), transport: UnreachableTransport())
        let noSecret = await smartcarError { () async throws(SmartcarError) in try await idOnly.refresh("r") }
        #expect(
            noSecret?.message
                == "SMARTCAR_CLIENT_SECRET is not set (set it in the agent's environment or pass --client-secret-file)")
    }

    @Test(arguments: [
        "http://example.com", "http://10.0.0.1:8080", "http://128.0.0.1", "http://localhost.example.com",
        "http://[::2]",
    ])
    func credentialsAreNeverSentOverPlainHTTPToOtherHosts(_ origin: String) async throws {
        let transport = UnreachableTransport()
        let url = URL(string: origin)!
        let configuration = SmartcarConfiguration(
            clientID: "id", clientSecret: "secret", authOrigin: url, iamOrigin: url, apiOrigin: url)
        let client = SmartcarClient(configuration: configuration, transport: transport)
        let errors = [
            await smartcarError { () async throws(SmartcarError) in try await client.exchangeCode("c", redirectURI: nil)
            },
            await smartcarError { () async throws(SmartcarError) in try await client.refresh("r") },
            await smartcarError { () async throws(SmartcarError) in try await client.applicationToken() },
            await smartcarError { () async throws(SmartcarError) in try await client.userID(accessToken: "a") },
        ]
        #expect(errors.map(\.?.kind) == Array(repeating: .configurationError, count: 4))
        #expect(errors[0]?.message.contains("refusing to send credentials to \(origin)") == true)
        #expect(errors[0]?.message.contains("SMARTCAR_AUTH_ORIGIN must be https") == true)
        #expect(errors[2]?.message.contains("SMARTCAR_IAM_ORIGIN") == true)
        #expect(errors[3]?.message.contains("SMARTCAR_API_ORIGIN") == true)
        #expect(transport.callCount == 0)
    }

    @Test func loopbackHosts() {
        for host in ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.1.2.3", "::1", "[::1]"] {
            #expect(LoopbackHost.isLoopback(host), "\(host)")
        }
        for host in [
            "example.com", "128.0.0.1", "10.0.0.1", "::2", "0.0.0.0", "127.0.0.1.example.com",
            "localhost.localdomain.evil",
        ] {
            #expect(!LoopbackHost.isLoopback(host), "\(host)")
        }
    }
}
