import AgentTestSupport
import FakeSmartcar
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How to start each process the bench measures: the agent, the peer (the Python SDK sidecar a user would
/// write instead) and the floor (`cat`, a minimal echo over the same pipes). Every child gets a minimal
/// environment: no proxies, none of the developer's Smartcar variables.
struct Sidecars {
    struct Recipe {
        let name: String
        let executable: String
        let arguments: [String]
        let environment: [String: String]

        func start(stderrPath: String? = nil) throws -> MeasuredProcess {
            try MeasuredProcess(
                name: name, executable: executable, arguments: arguments, environment: environment,
                stderrPath: stderrPath)
        }
    }

    struct SetupError: Error, CustomStringConvertible {
        let description: String
    }

    let agentPath: String
    let agentVersion: String
    let repository: String
    /// The peer's interpreter and script; nil when the peer is skipped (`peerSkipReason` says why).
    let peer: (python: String, script: String)?
    let peerSkipReason: String?
    let cat: String
    let work: String

    private static let baseEnvironment = [
        "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        "no_proxy": "127.0.0.1,localhost",
        "LANG": "C.UTF-8",
    ]

    init(options: BenchOptions, work: String) throws(SetupError) {
        self.work = work
        let products = BinaryLocator.productsFolder.path
        agentPath = options.agentPath ?? BinaryLocator.agent
        guard access(agentPath, X_OK) == 0 else {
            throw SetupError(
                description:
                    "no agent binary at \(agentPath): run `swift build -c release` first (or pass --agent PATH)")
        }
        let version = Sidecars.capture(agentPath, ["--version"], Sidecars.baseEnvironment)
        agentVersion = version.output.split(separator: "\n").first.map(String.init) ?? "unknown version"
        guard let repository = Sidecars.findRepository(from: [FileManager.default.currentDirectoryPath, products])
        else {
            throw SetupError(
                description:
                    "cannot find the repository (Package.swift and clients/shell/smartcar-auth): run the bench from it")
        }
        self.repository = repository
        guard let cat = Sidecars.which("cat") else {
            throw SetupError(description: "no cat on PATH for the pipe floor")
        }
        self.cat = cat

        let (peer, reason) = Sidecars.locatePeer(options: options, repository: repository)
        self.peer = peer
        peerSkipReason = reason
    }

    var hasPeer: Bool { peer != nil }

    /// The agent on `store` (a path or `memory`), configured for `fake`.
    func agent(store: String, fake: FakeSmartcar, extraArguments: [String] = []) -> Recipe {
        agent(BenchStore.sqlite(store), fake: fake, extraArguments: extraArguments)
    }

    /// The agent on `store`, configured for `fake`; named after the store's backend when it is not SQLite.
    func agent(_ store: BenchStore, fake: FakeSmartcar, extraArguments: [String] = []) -> Recipe {
        Recipe(
            name: store.backend.agentName,
            executable: agentPath,
            arguments: store.agentArguments + ["--log-level", "error"] + extraArguments,
            environment: Sidecars.baseEnvironment.merging(fake.agentEnvironment) { _, new in new })
    }

    /// The peer on its JSON file `store`; nil when the peer is skipped. Its SDK takes the full token URL.
    func peer(store: String, fake: FakeSmartcar) -> Recipe? {
        guard let peer else { return nil }
        var environment = Sidecars.baseEnvironment
        environment["SMARTCAR_CLIENT_ID"] = fake.options.clientID
        environment["SMARTCAR_CLIENT_SECRET"] = fake.options.clientSecret
        environment["SMARTCAR_REDIRECT_URI"] = FakeSmartcar.redirectURI
        environment["SMARTCAR_AUTH_ORIGIN"] = fake.origin.absoluteString + "/oauth/token"
        environment["PEER_STORE"] = store
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        return Recipe(name: "peer", executable: peer.python, arguments: [peer.script], environment: environment)
    }

    var floor: Recipe { Recipe(name: "floor", executable: cat, arguments: [], environment: Sidecars.baseEnvironment) }

    /// `clients/shell/smartcar-auth ARGS` using this agent on `store`.
    func shellClient(_ arguments: [String], store: String, fake: FakeSmartcar) -> Recipe {
        var environment = Sidecars.baseEnvironment.merging(fake.agentEnvironment) { _, new in new }
        environment["SMARTCAR_AUTH_AGENT"] = agentPath
        environment["SMARTCAR_AUTH_AGENT_ARGS"] = "--store \(store) --log-level error"
        return Recipe(
            name: "smartcar-auth", executable: repository + "/clients/shell/smartcar-auth",
            arguments: arguments, environment: environment)
    }

    // MARK: Locating things

    private static func locatePeer(
        options: BenchOptions, repository: String
    ) -> ((python: String, script: String)?, String?) {
        guard options.usePeer else { return (nil, "--no-peer") }
        let script =
            options.peerScript
            ?? ((repository as NSString).deletingLastPathComponent + "/shared/bench/python_sdk_sidecar.py")
        guard FileManager.default.fileExists(atPath: script) else {
            return (nil, "no peer script at \(script) (pass --peer PATH)")
        }
        guard let launcher = options.python ?? which("python3") else { return (nil, "no python3 on PATH") }
        // Resolve shims (pyenv's python3 is a shell script): the peer's start-up is Python's, not a shim's.
        let probe = capture(launcher, ["-c", "import sys, smartcar; print(sys.executable)"], baseEnvironment)
        let python = probe.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard probe.status == 0, !python.isEmpty else {
            return (nil, "`python3 -c 'import smartcar'` failed: pip install smartcar==6.19.1")
        }
        return ((python, script), nil)
    }

    private static func findRepository(from starts: [String]) -> String? {
        for start in starts {
            var folder = URL(fileURLWithPath: start).standardizedFileURL.path
            while true {
                if FileManager.default.fileExists(atPath: folder + "/Package.swift"),
                    FileManager.default.fileExists(atPath: folder + "/clients/shell/smartcar-auth")
                {
                    return folder
                }
                let parent = (folder as NSString).deletingLastPathComponent
                if parent == folder || parent.isEmpty { break }
                folder = parent
            }
        }
        return nil
    }

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    /// Runs a short command to its end and answers its exit status and stdout.
    static func capture(
        _ executable: String, _ arguments: [String], _ environment: [String: String]
    ) -> (status: Int32, output: String) {
        guard
            let child = try? MeasuredProcess(
                name: executable, executable: executable, arguments: arguments,
                environment: environment)
        else {
            return (-1, "")
        }
        child.closeInput()
        var output = ""
        while let line = child.output.nextLineString() { output += line + "\n" }
        return (child.finish(), output)
    }
}
