// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "smartcar-auth-agent",
    products: [
        .executable(name: "smartcar-auth-agent", targets: ["smartcar-auth-agent"]),
        .executable(name: "fake-smartcar", targets: ["fake-smartcar"]),
        .executable(name: "agent-bench", targets: ["agent-bench"]),
        .executable(name: "replay-transcripts", targets: ["replay-transcripts"]),
        .executable(name: "agent-reliability", targets: ["agent-reliability"]),
    ],
    targets: [
        // Logging to stderr and the agent's notion of "now"; no domain knowledge.
        .target(name: "AgentSupport"),
        // JSON values and text (order-keeping, one string escaper), and form encoding; no I/O, no domain knowledge.
        .target(name: "WireFormats"),
        // JSON-RPC 2.0 over stdio (LSP framing or NDJSON). Knows nothing of Smartcar.
        .target(name: "JSONRPC", dependencies: ["AgentSupport", "WireFormats"]),
        // Everything the agent says to Smartcar: Connect URLs, token grants, typed errors.
        .target(name: "SmartcarOAuth", dependencies: ["AgentSupport", "CCurl", "WireFormats"]),
        // The operating system's libcurl (the transport to Smartcar).
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"])]),
        // The operating system's libsqlite3.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        // AES-256-GCM, HKDF-SHA256 and wiped key memory, from the operating system (libcrypto; CryptoKit on macOS).
        .target(name: "Sealing", dependencies: [.target(name: "CCrypto", condition: .when(platforms: [.linux]))]),
        // The operating system's libcrypto (OpenSSL 3).
        .systemLibrary(name: "CCrypto", providers: [.apt(["libssl-dev"])]),
        // The operating system's libpq (the PostgreSQL client library).
        .systemLibrary(
            name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"]), .brew(["libpq"])]),
        // Durable, cross-process token store on SQLite, or shared by many hosts on PostgreSQL.
        .target(name: "TokenStore", dependencies: ["AgentSupport", "CLibPQ", "CSQLite", "Sealing", "WireFormats"]),
        // A fake of Smartcar's OAuth endpoints on a loopback port, for tests and --sandbox.
        .target(name: "FakeSmartcar", dependencies: ["AgentSupport", "WireFormats"]),
        // The agent: JSON-RPC methods on top of OAuth and the store.
        .target(
            name: "AuthAgent",
            dependencies: ["AgentSupport", "JSONRPC", "SmartcarOAuth", "TokenStore", "WireFormats"]),
        .executableTarget(
            name: "smartcar-auth-agent", dependencies: ["AuthAgent", "FakeSmartcar", "Sealing", "TranscriptRecording"],
            // Release builds link the Swift runtime and Foundation statically: loading and relocating them
            // as shared libraries was about half of the agent's start-up (spawn to first getToken 28 → 17 ms).
            // The modules were compiled against the shared Foundation, so the static one's own libraries are
            // named here (FoundationNetworking is not used: the transport is libcurl, linked as CCurl says).
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-static-stdlib", "-lCoreFoundation", "-l_FoundationCShims", "-l_FoundationCollections",
                        "-l_FoundationICU",
                    ],
                    .when(platforms: [.linux], configuration: .release))
            ]),
        // The fake Smartcar as a process of its own, for the Python and shell clients' tests.
        .executableTarget(name: "fake-smartcar", dependencies: ["AgentSupport", "FakeSmartcar", "WireFormats"]),
        // `swift run -c release agent-bench`: measures the release agent binary against a fake Smartcar
        // and, when the Smartcar Python SDK is installed, against a sidecar written on it. It spawns the
        // agent binary; depending on its target only makes SwiftPM build it first.
        .executableTarget(
            name: "agent-bench",
            dependencies: [
                "AgentSupport", "AgentTestSupport", "FakeSmartcar", "TokenStore",
                "WireFormats", "smartcar-auth-agent",
            ]),
        // Transcripts (Protocol/transcripts, order-keeping JSON from WireFormats): `--record`, and the replay
        // harness that drives an agent binary with the fake Smartcar playing the recorded upstream.
        .target(
            name: "TranscriptRecording", dependencies: ["AgentSupport", "WireFormats", "JSONRPC", "SmartcarOAuth"]),
        .target(
            name: "TranscriptReplay",
            dependencies: ["AgentTestSupport", "WireFormats", "FakeSmartcar", "CSQLite", "Sealing", "TokenStore"]),
        // What the tests and tools share to drive an agent: the process, its output, temporary folders, seeds,
        // and the agent in process (an in-memory transport, a real store, the fake Smartcar).
        .target(
            name: "AgentTestSupport",
            dependencies: [
                "AgentSupport", "AuthAgent", "CLibPQ", "CSQLite", "FakeSmartcar", "JSONRPC", "Sealing", "SmartcarOAuth",
                "TokenStore", "WireFormats",
            ]),
        .executableTarget(name: "replay-transcripts", dependencies: ["AgentTestSupport", "TranscriptReplay"]),
        // The reliability suites (fuzz, crash, upstream faults, secrets, rotation race) against the agent binary.
        .executableTarget(
            name: "agent-reliability",
            dependencies: ["AgentTestSupport", "CSQLite", "FakeSmartcar", "JSONRPC", "TokenStore", "WireFormats"]),

        .testTarget(name: "WireFormatsTests", dependencies: ["WireFormats"]),
        .testTarget(name: "SealingTests", dependencies: ["AgentTestSupport", "Sealing"]),
        .testTarget(name: "JSONRPCTests", dependencies: ["AgentTestSupport", "JSONRPC", "WireFormats"]),
        .testTarget(
            name: "SmartcarOAuthTests",
            dependencies: ["AgentTestSupport", "SmartcarOAuth", "FakeSmartcar", "WireFormats"]),
        .testTarget(name: "TokenStoreTests", dependencies: ["AgentTestSupport", "TokenStore"]),
        .testTarget(name: "FakeSmartcarTests", dependencies: ["AgentTestSupport", "FakeSmartcar", "WireFormats"]),
        .testTarget(
            name: "TranscriptTests",
            dependencies: [
                "AgentTestSupport", "TranscriptReplay", "TranscriptRecording", "WireFormats",
                "FakeSmartcar", "smartcar-auth-agent",
            ],
            exclude: ["broken"]),
        // The agent's start-up: the option table, parsing, `--help`, the launcher (inside the executable's module).
        .testTarget(
            name: "StartupTests",
            dependencies: ["smartcar-auth-agent", "AgentTestSupport", "AuthAgent", "AgentSupport"]),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "AgentTestSupport", "AuthAgent", "JSONRPC", "TokenStore", "WireFormats",
                "FakeSmartcar", "smartcar-auth-agent",
            ]),
    ],
    swiftLanguageModes: [.v6]
)
