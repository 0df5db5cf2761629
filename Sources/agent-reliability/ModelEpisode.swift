import AgentTestSupport
import FakeSmartcar
import Foundation
import JSONRPC
import WireFormats

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One seeded run of the model suite: `ModelSuite.processes` agents on one store (SQLite or PostgreSQL) against a strict fake, a
/// random stream of operations on colliding keys with upstream faults, kills and storage locks, every answer
/// and every quiescent point checked against the `ReferenceModel`. Stops at the first violation.
///
/// The seed fixes every choice (operations, keys, agents, faults, kills, locks, release orders); which
/// operations overlap also depends on timing, so a replay explores the same stream, not always the same
/// interleaving.
final class ModelEpisode {
    /// What the episode counted, summed over episodes by the suite.
    struct Figures {
        var operations = 0
        var outcomes: [String: Int] = [:]
        var faults: [String: Int] = [:]
        var kills = 0
        var storageLocks = 0
        var releasedHeld = 0
        var quiescentChecks = 0
        var excusedRefusals = 0
        var graceReuses = 0
        /// Reads answered from an agent's snapshot with a grant another agent's write had replaced.
        var staleSnapshotReads = 0
        /// Quiescent points where a key showed a failed save written over a later successful write.
        var lateKeptSaves = 0

        mutating func add(_ other: Figures) {
            operations += other.operations
            outcomes.merge(other.outcomes, uniquingKeysWith: +)
            faults.merge(other.faults, uniquingKeysWith: +)
            kills += other.kills
            storageLocks += other.storageLocks
            releasedHeld += other.releasedHeld
            quiescentChecks += other.quiescentChecks
            excusedRefusals += other.excusedRefusals
            graceReuses += other.graceReuses
            staleSnapshotReads += other.staleSnapshotReads
            lateKeptSaves += other.lateKeptSaves
        }
    }

    struct Violation: Error, CustomStringConvertible {
        var description: String
    }

    /// Short request timeout (2.6 s delays become lost answers) and lease (a killed agent's lease ends soon);
    /// a short busy timeout, so writes under the storage lock fail quickly.
    static let agentArguments = [
        "--log-level", "warning", "--request-timeout", "2", "--lease-seconds", "3", "--store-busy-timeout", "0.2",
    ]
    /// Operations between quiescent checks.
    static let quiescentEvery = 12
    /// Smartcar's documented reuse window for a spent refresh token.
    static let graceSeconds: TimeInterval = 60

    let harness: Harness
    let seed: UInt64
    var figures = Figures()
    var random: SeededGenerator
    /// Release orders of held answers: drawn apart, since how often they are drawn depends on timing.
    var releaseRandom: SeededGenerator
    var model = ReferenceModel(keys: ModelChoices.keys)
    let fake: FakeSmartcar
    let folder: TemporaryFolder
    let backend: StoreBackend
    /// The `--store` argument: a file's path or a database's URI.
    let store: String
    var agents: [AgentProcess] = []
    var inspector: (any StoreInspector)!
    var inFlight: [ModelOperation] = []
    var nextID = 0
    var grants = 0
    var grantKeys: [String: ModelKey] = [:]
    /// Answers to wait for before the storage lock is released.
    var lockAnswersLeft = 0
    /// A storage lock was held since the last quiescent check: tokens may wait in memory to be written.
    var storageDisturbed = false
    /// Keys whose stored refresh token may have been spent by a refresh whose answer nobody will store (its
    /// agent was killed, or it answered `upstreamUnavailable`): a spent token in the store is legal there,
    /// and once Smartcar's grace window is over, so is its refusal.
    var spentMayStay: Set<ModelKey> = []
    var notificationsSeen: [Int] = []
    var refusalsSeen = 0
    var lastProgress = ContinuousClock.now
    var heldSince: ContinuousClock.Instant?
    /// Keys whose row, at the last look, is a failed save written late (`ReferenceModel.isLateKeptSave`).
    var lateKeptSaves: Set<ModelKey> = []
    /// When the agent in each slot started. Its snapshot may hold any grant the key held since then: no
    /// agent learns of another's writes (the known bug `ModelSuite` reports as stale snapshot reads).
    var agentStarted: [Int] = []
    /// `MODEL_STRICT_SNAPSHOTS=1`: a stale snapshot read is a violation (see `ModelSuite`), not a figure.
    let strictSnapshots = ProcessInfo.processInfo.environment["MODEL_STRICT_SNAPSHOTS"] == "1"
    /// `MODEL_TRACE=1` in the environment: every step on stderr, to read a replayed failure.
    let tracing = ProcessInfo.processInfo.environment["MODEL_TRACE"] == "1"

    func trace(_ line: @autoclosure () -> String) {
        if tracing { FileHandle.standardError.write(Data("[\(model.clock)] \(line())\n".utf8)) }
    }

    init(harness: Harness, seed: UInt64, processes: Int, backend: StoreBackend) throws {
        self.harness = harness
        self.seed = seed
        self.backend = backend
        random = SeededGenerator(seed: seed)
        releaseRandom = SeededGenerator(seed: seed ^ 0x4E1D)
        var options = FakeSmartcar.Options()
        options.refreshReuse = .grace(Self.graceSeconds)
        options.accessTokenLifetime = 600
        fake = try FakeSmartcar(options: options)
        folder = try TemporaryFolder("agent-reliability-model")
        store = try backend.makeStore(in: folder)
        for _ in 0..<processes { agents.append(try startAgent()) }
        notificationsSeen = Array(repeating: 0, count: processes)
        agentStarted = Array(repeating: 0, count: processes)
        inspector = try backend.inspector(of: store)
    }

    deinit {
        inspector?.close()
        for agent in agents { agent.kill(SIGKILL) }
        fake.stop()
    }

    /// Runs `operations` operations; throws the first violation.
    func run(operations: Int) throws {
        var sent = 0
        var window = Int.random(in: 1...4, using: &random)
        var checkDue = false
        while true {
            if !checkDue && sent < operations && inFlight.count < window {
                try disturb()
                try sendRandomOperation()
                sent += 1
                checkDue = sent % Self.quiescentEvery == 0 || sent == operations
                if random.chance(0.6) { continue }
            }
            if inFlight.isEmpty {
                if checkDue {
                    try quiescentCheck()
                    checkDue = false
                    window = Int.random(in: 1...4, using: &random)
                    if sent == operations { break }
                }
                continue
            }
            try waitForProgress()
        }
        try finish()
    }

    // MARK: Agents

    func startAgent() throws -> AgentProcess {
        let agent = try harness.agent(["--store", store] + Self.agentArguments, fake: fake)
        guard agent.call("init", "initialize", ["notifications": true])?.isSuccess == true else {
            throw Violation(description: "an agent did not start: \(agent.keepStderr())")
        }
        return agent
    }

    func kill(_ slot: Int) throws {
        let agent = agents[slot]
        agent.kill(SIGKILL)
        trace("kill -9 agent \(slot)")
        _ = agent.exitStatus()
        for op in inFlight where op.slot == slot {
            if let write = op.write {
                model.finish(write, of: op.key, .mayHaveHappened)
            } else {
                spentMayStay.insert(op.key)
            }
            figures.outcomes["\(op.kind) killed", default: 0] += 1
        }
        inFlight.removeAll { $0.slot == slot }
        model.agentDied(slot)
        agentStarted[slot] = model.tick()
        agents[slot] = try startAgent()
        notificationsSeen[slot] = 0
        figures.kills += 1
    }

    // MARK: Disturbances and operations

    /// Maybe queues an upstream fault, takes the storage lock, or kills an agent, before the next operation.
    func disturb() throws {
        if random.chance(0.3) {
            let (fault, times) = ModelChoices.fault(using: &random)
            fake.inject(fault, on: .token, times: times)
            figures.faults[Self.name(fault), default: 0] += times
            trace("fault \(Self.name(fault)) ×\(times)")
        }
        let lock = random.chance(0.04)
        let answers = Int.random(in: 1...4, using: &random)
        if lock && !inspector.locked {
            try inspector.lock()
            trace("storage locked")
            lockAnswersLeft = answers
            storageDisturbed = true
            figures.storageLocks += 1
        }
        let kill = random.chance(0.04)
        let victim = Int.random(in: 0..<agents.count, using: &random)
        // Not while tokens may wait in memory for the store: a kill -9 loses those by definition.
        if kill && !inspector.locked && !storageDisturbed { try self.kill(victim) }
    }

    static func name(_ fault: Fault) -> String {
        switch fault {
        case .delay(let duration): duration > .seconds(2) ? "delay past the request timeout" : "delay"
        case .drop: "drop"
        case .dropAfterHandling: "drop after handling"
        case .hold: "hold (reorder)"
        default: "other"
        }
    }

    func newGrant(for key: ModelKey) -> String {
        grants += 1
        let grant = "grant-\(String(seed, radix: 16))-\(grants)"
        grantKeys[grant] = key
        return grant
    }

    func sendRandomOperation() throws {
        let kind = ModelChoices.kind(using: &random)
        let key = ModelChoices.keys.randomElement(using: &random)!
        let slot = Int.random(in: 0..<agents.count, using: &random)
        let minValidity = [0, 60, 300].randomElement(using: &random)!
        let expiresAt = ModelChoices.expiresAt(using: &random)
        nextID += 1
        let id = JSONValue.int(Int64(nextID))
        let agent = agents[slot]
        var params: [String: JSONValue] = ["key": .string(key.string)]
        var grant: String?
        var accessToken: String?
        switch kind {
        case .getToken, .getTokenForced:
            params["minValidity"] = .int(Int64(minValidity))
            if kind == .getTokenForced { params["forceRefresh"] = true }
        case .storeToken:
            grant = newGrant(for: key)
            let minted = fake.mintTokens(userID: grant!)
            accessToken = minted.accessToken
            params["accessToken"] = .string(minted.accessToken)
            params["refreshToken"] = .string(minted.refreshToken)
            params["expiresAt"] = .string(expiresAt)
        case .exchangeCode:
            grant = newGrant(for: key)
            params["code"] = .string(fake.issueCode(redirectURI: FakeSmartcar.redirectURI, userID: grant!))
        case .handleRedirect:
            grant = newGrant(for: key)
            let connect = agent.call(.string("connect-\(nextID)"), "buildConnectURL", ["key": .string(key.string)])
            guard let state = connect?["result"]?["state"]?.stringValue else {
                // The state is issued in the store: while the store is locked, that may fail. No redirect then.
                if connect?["error"]?["data"]?["kind"] == "storageError" { return }
                throw Violation(description: "buildConnectURL failed: \(connect.map(\.compactText) ?? "no answer")")
            }
            let code = fake.issueCode(redirectURI: FakeSmartcar.redirectURI, userID: grant!)
            var url = URLComponents(string: FakeSmartcar.redirectURI)!
            url.queryItems = [URLQueryItem(name: "code", value: code), URLQueryItem(name: "state", value: state)]
            params = ["url": .string(url.string!)]
        case .forgetToken:
            break
        }
        let write: Int? = kind == .getToken || kind == .getTokenForced ? nil : model.send(grant, to: key)
        let sent = write == nil ? model.tick() : model.clock
        inFlight.append(
            ModelOperation(
                id: id, slot: slot, kind: kind, key: key, write: write, grant: grant, accessToken: accessToken,
                sent: sent))
        agent.request(id, kind == .getTokenForced ? "getToken" : kind.rawValue, .object(params))
        trace("send #\(nextID) \(kind) \(key) on agent \(slot)\(grant.map { " installing " + $0 } ?? "")")
        figures.operations += 1
    }

    /// Ends every agent by closing its input (each must exit 0: nothing left unsaved), then checks the store.
    func finish() throws {
        for agent in agents { agent.closeInput() }
        for (slot, agent) in agents.enumerated() {
            let status = agent.exitStatus()
            guard status == 0 else {
                throw Violation(
                    description:
                        "agent \(slot) exited with \(status.map(String.init) ?? "nothing"): \(agent.keepStderr())")
            }
            guard agent.inbox.violations.isEmpty else {
                throw Violation(description: "agent \(slot) wrote non-protocol output on stdout")
            }
            try checkNotifications(agent.inbox, slot: slot)
            model.agentDied(slot)
        }
        try quiescentCheck()
        figures.graceReuses = fake.graceReuses
    }
}
