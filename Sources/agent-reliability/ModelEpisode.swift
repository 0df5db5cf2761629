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

/// One seeded run of the model suite: `ModelSuite.processes` agents on one store against a strict fake, a
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
    private(set) var figures = Figures()
    private var random: SeededGenerator
    /// Release orders of held answers: drawn apart, since how often they are drawn depends on timing.
    private var releaseRandom: SeededGenerator
    private var model = ReferenceModel(keys: ModelChoices.keys)
    private let fake: FakeSmartcar
    private let folder: TemporaryFolder
    private let storePath: String
    private var agents: [AgentProcess] = []
    private var inspector: StoreInspector!
    private var inFlight: [ModelOperation] = []
    private var nextID = 0
    private var grants = 0
    private var grantKeys: [String: ModelKey] = [:]
    /// Answers to wait for before the storage lock is released.
    private var lockAnswersLeft = 0
    /// A storage lock was held since the last quiescent check: tokens may wait in memory to be written.
    private var storageDisturbed = false
    /// Keys whose stored refresh token may have been spent by a refresh whose answer nobody will store (its
    /// agent was killed, or it answered `upstreamUnavailable`): a spent token in the store is legal there,
    /// and once Smartcar's grace window is over, so is its refusal.
    private var spentMayStay: Set<ModelKey> = []
    private var notificationsSeen: [Int] = []
    private var refusalsSeen = 0
    private var lastProgress = ContinuousClock.now
    private var heldSince: ContinuousClock.Instant?
    /// Keys whose row, at the last look, is a failed save written late (`ReferenceModel.isLateKeptSave`).
    private var lateKeptSaves: Set<ModelKey> = []
    /// Per agent slot and key, the grants that agent wrote or handed out (nil: forgotten) and when, latest
    /// last: what its snapshot may still hold when another agent replaces the key.
    private var seen: [Int: [ModelKey: [(grant: String?, since: Int)]]] = [:]
    /// `MODEL_STRICT_SNAPSHOTS=1`: a stale snapshot read is a violation (see `ModelSuite`), not a figure.
    private let strictSnapshots = ProcessInfo.processInfo.environment["MODEL_STRICT_SNAPSHOTS"] == "1"
    /// `MODEL_TRACE=1` in the environment: every step on stderr, to read a replayed failure.
    private let tracing = ProcessInfo.processInfo.environment["MODEL_TRACE"] == "1"

    private func trace(_ line: @autoclosure () -> String) {
        if tracing { FileHandle.standardError.write(Data("[\(model.clock)] \(line())\n".utf8)) }
    }

    init(harness: Harness, seed: UInt64, processes: Int) throws {
        self.harness = harness
        self.seed = seed
        random = SeededGenerator(seed: seed)
        releaseRandom = SeededGenerator(seed: seed ^ 0x4E1D)
        var options = FakeSmartcar.Options()
        options.refreshReuse = .grace(Self.graceSeconds)
        options.accessTokenLifetime = 600
        fake = try FakeSmartcar(options: options)
        folder = try TemporaryFolder("agent-reliability-model")
        storePath = folder.file("tokens.sqlite3")
        for _ in 0..<processes { agents.append(try startAgent()) }
        notificationsSeen = Array(repeating: 0, count: processes)
        inspector = try StoreInspector(path: storePath)
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

    private func startAgent() throws -> AgentProcess {
        let agent = try harness.agent(["--store", storePath] + Self.agentArguments, fake: fake)
        guard agent.call("init", "initialize", ["notifications": true])?.isSuccess == true else {
            throw Violation(description: "an agent did not start: \(agent.keepStderr())")
        }
        return agent
    }

    private func kill(_ slot: Int) throws {
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
        seen[slot] = nil
        agents[slot] = try startAgent()
        notificationsSeen[slot] = 0
        figures.kills += 1
    }

    // MARK: Disturbances and operations

    /// Maybe queues an upstream fault, takes the storage lock, or kills an agent, before the next operation.
    private func disturb() throws {
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

    private static func name(_ fault: Fault) -> String {
        switch fault {
        case .delay(let duration): duration > .seconds(2) ? "delay past the request timeout" : "delay"
        case .drop: "drop"
        case .dropAfterHandling: "drop after handling"
        case .hold: "hold (reorder)"
        default: "other"
        }
    }

    private func newGrant(for key: ModelKey) -> String {
        grants += 1
        let grant = "grant-\(String(seed, radix: 16))-\(grants)"
        grantKeys[grant] = key
        return grant
    }

    private func sendRandomOperation() throws {
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

    // MARK: Answers

    /// Takes every answer that arrived; with none, waits a moment, then lets held answers go or the storage
    /// lock end, so that nothing waits on the driver (these choices only shape interleavings, never a verdict).
    private func waitForProgress() throws {
        if try collectAnswers() > 0 {
            lastProgress = .now
            return
        }
        let oldest = inFlight[0]
        _ = agents[oldest.slot].waitUntil(.now + .milliseconds(100)) { $0.first(oldest.id) != nil }
        if try collectAnswers() > 0 {
            lastProgress = .now
            return
        }
        let held = !fake.heldAnswers.isEmpty
        if held, heldSince == nil { heldSince = .now }
        let idle = ContinuousClock.now - lastProgress > .milliseconds(300)
        if held && (idle || ContinuousClock.now - heldSince! > .seconds(1)) {
            figures.releasedHeld += fake.releaseHeld(using: &releaseRandom).count
            heldSince = nil
            lastProgress = .now
        } else if idle && inspector.locked {
            inspector.unlock()
            lastProgress = .now
        } else if ContinuousClock.now - lastProgress > .seconds(120) {
            let stuck = inFlight.map { "\($0.kind) \($0.key) on agent \($0.slot)" }.joined(separator: ", ")
            throw Violation(
                description:
                    "no answer for 120 s with \(stuck) in flight: \(agents[oldest.slot].keepStderr())")
        }
    }

    private func collectAnswers() throws -> Int {
        var answered = 0
        for slot in agents.indices {
            let inbox = agents[slot].inbox
            try checkNotifications(inbox, slot: slot)
            for op in inFlight where op.slot == slot {
                guard let answer = inbox.first(op.id) else { continue }
                inFlight.removeAll { $0.id == op.id && $0.slot == slot }
                answered += 1
                try judge(op, answer)
            }
        }
        if answered > 0 && inspector.locked {
            lockAnswersLeft -= answered
            if lockAnswersLeft <= 0 { inspector.unlock() }
        }
        return answered
    }

    private func checkNotifications(_ inbox: AgentProcess.Inbox, slot: Int) throws {
        let new = inbox.notifications.dropFirst(notificationsSeen[slot])
        notificationsSeen[slot] = inbox.notifications.count
        for notification in new where notification["method"]?.stringValue == "reauthRequired" {
            let key = ModelKey(notification["params"]?["key"]?.stringValue ?? "")
            guard spentMayStay.contains(key) else {
                throw Violation(description: "agent \(slot) notified reauthRequired for \(key): a false reauthRequired")
            }
        }
    }

    /// Checks one answer against the model and records the write's outcome.
    private func judge(_ op: ModelOperation, _ answer: JSONValue) throws {
        figures.outcomes["\(op.kind) \(answer.outcome)", default: 0] += 1
        trace(
            "answer #\(op.id) \(op.kind) \(op.key) on agent \(op.slot): \(answer.outcome)"
                + ((answer["result"]?["accessToken"]?.stringValue).map { " " + (fake.owner(ofAccessToken: $0) ?? "?") }
                    ?? ""))
        let kind = answer.errorKind
        let token = answer["result"]?["accessToken"]?.stringValue
        switch op.kind {
        case .storeToken:
            if answer.isSuccess, token != op.accessToken {
                throw Violation(description: "storeToken \(op.key) answered another access token than it imported")
            }
            model.finish(op.write!, of: op.key, outcome(answer, op))
        case .exchangeCode, .handleRedirect:
            if answer.isSuccess, fake.owner(ofAccessToken: token ?? "") != op.grant {
                throw Violation(description: "\(op.kind) \(op.key) answered a token of another grant than its own")
            }
            if kind == "invalidGrant" {
                throw Violation(description: "\(op.kind) \(op.key): Smartcar refused a fresh code (invalid_grant)")
            }
            model.finish(op.write!, of: op.key, outcome(answer, op))
        case .forgetToken:
            model.finish(op.write!, of: op.key, answer.isSuccess ? .happened : .mayHaveHappened)
        case .getToken, .getTokenForced:
            let possible = model.possible(op.key, sent: op.sent, answered: model.tick())
            if answer.isSuccess {
                guard let owner = fake.owner(ofAccessToken: token ?? "") else {
                    throw Violation(description: "getToken \(op.key) answered an access token Smartcar never issued")
                }
                if !possible.contains(owner), !strictSnapshots, snapshotMayHold(owner, op) {
                    figures.staleSnapshotReads += 1
                    trace("stale snapshot read: \(owner) for \(op.key) on agent \(op.slot)")
                    return
                }
                guard possible.contains(owner) else {
                    throw Violation(
                        description:
                            "getToken \(op.key) on agent \(op.slot) answered \(owner)'s token (key of \(grantKeys[owner].map(\.description) ?? "?")), but the key may only hold \(Self.describe(possible))"
                    )
                }
                saw(owner, op)
            } else if kind == "unknownKey", !possible.contains(nil) {
                throw Violation(
                    description:
                        "getToken \(op.key) on agent \(op.slot) answered unknownKey, but the key must hold \(Self.describe(possible))"
                )
            } else if kind == "reauthRequired", !spentMayStay.contains(op.key) {
                throw Violation(description: "getToken \(op.key) on agent \(op.slot) answered a false reauthRequired")
            } else if kind == "upstreamUnavailable" {
                spentMayStay.insert(op.key)
            }
        }
        if op.isWrite, answer.isSuccess {
            spentMayStay.remove(op.key)
            saw(op.grant, op)
        }
    }

    private func saw(_ grant: String?, _ op: ModelOperation) {
        var history = seen[op.slot, default: [:]][op.key, default: []]
        history.append((grant, model.clock))
        seen[op.slot, default: [:]][op.key] = history.suffix(8)
    }

    /// Whether the agent of `op` had `grant` for the key at some moment of the read: its latest grant when
    /// the read was sent, or one it got while the read ran.
    private func snapshotMayHold(_ grant: String, _ op: ModelOperation) -> Bool {
        let history = seen[op.slot]?[op.key] ?? []
        let atSend = history.last { $0.since <= op.sent }.map { [$0] } ?? []
        return (atSend + history.filter { $0.since > op.sent }).contains { $0.grant == grant }
    }

    /// A save answered `storageError` is kept in memory by its agent and may be written until that agent dies.
    private func outcome(_ answer: JSONValue, _ op: ModelOperation) -> ReferenceModel.Outcome {
        if answer.isSuccess { return .happened }
        return answer.errorKind == "storageError" ? .mayStillHappen(slot: op.slot) : .didNotHappen
    }

    private static func describe(_ states: Set<String?>) -> String {
        "{" + states.map { $0 ?? "no tokens" }.sorted().joined(separator: ", ") + "}"
    }

    // MARK: Quiescent points

    /// With nothing in flight: every key's row is a state the model allows, its refresh token is the fake's
    /// live one of that grant, and Smartcar refused nothing. After a storage lock the agents write the tokens
    /// they kept in memory in the background (a pause doubling up to 1 s, with no event to wait on), so the
    /// store is read again for up to 30 s until it settles.
    private func quiescentCheck() throws {
        if !fake.heldAnswers.isEmpty { figures.releasedHeld += fake.releaseHeld(using: &releaseRandom).count }
        fake.reset()  // faults no request took
        inspector.unlock()
        let deadline = ContinuousClock.now + .seconds(storageDisturbed ? 30 : 0)
        var problems = try storeProblems()
        while !problems.isEmpty && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            problems = try storeProblems()
        }
        if let problem = problems.first { throw Violation(description: problem) }
        figures.lateKeptSaves += lateKeptSaves.count
        try checkRefusals()
        storageDisturbed = false
        model.prune()
        figures.quiescentChecks += 1
    }

    private func storeProblems() throws -> [String] {
        lateKeptSaves = []
        let rows = try inspector.rows()
        var problems: [String] = []
        for key in model.keys {
            let possible = model.possibleNow(key)
            guard let row = rows[key] else {
                if !possible.contains(nil) {
                    problems.append("\(key) has no tokens in the store, but must hold \(Self.describe(possible))")
                }
                continue
            }
            guard let grant = fake.owner(ofRefreshToken: row.refreshToken) else {
                problems.append("\(key) holds a refresh token Smartcar never issued")
                continue
            }
            if !possible.contains(grant) {
                problems.append(
                    "\(key) holds \(grant) (a grant of \(grantKeys[grant].map(\.description) ?? "?")), but the operations linearized last allow only \(Self.describe(possible))"
                )
            }
            if model.isLateKeptSave(key, grant: grant) {
                lateKeptSaves.insert(key)
                trace("late kept save: \(key) shows \(grant)")
            }
            if fake.owner(ofAccessToken: row.accessToken) != grant {
                problems.append("\(key) holds an access token of another grant than its refresh token")
            }
            if spentMayStay.contains(key) { continue }
            if row.needsReauth { problems.append("\(key) is marked reauthRequired in the store") }
            if !fake.isLive(refreshToken: row.refreshToken) {
                problems.append("\(key) holds a refresh token Smartcar no longer accepts")
            } else if fake.isSpent(refreshToken: row.refreshToken) {
                problems.append("\(key) holds a spent refresh token: the one that replaced it was never stored")
            }
        }
        for key in rows.keys where !model.keys.contains(key) { problems.append("the store holds unknown key \(key)") }
        return problems
    }

    /// Every `invalid_grant` the fake answered since the last look is a violation, unless the token's key may
    /// hold a token spent by a refresh whose answer nobody could store.
    private func checkRefusals() throws {
        let refusals = fake.refusedRefreshes
        for refusal in refusals.dropFirst(refusalsSeen) {
            let key = refusal.userID.flatMap { grantKeys[$0] }
            if let key, spentMayStay.contains(key) {
                figures.excusedRefusals += 1
                continue
            }
            throw Violation(
                description:
                    "Smartcar answered invalid_grant to a refresh of \(refusal.userID ?? "an unknown token") (key \(key.map(\.description) ?? "?")): a refresh token spent twice"
            )
        }
        refusalsSeen = refusals.count
    }

    /// Ends every agent by closing its input (each must exit 0: nothing left unsaved), then checks the store.
    private func finish() throws {
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
