import AgentTestSupport
import FakeSmartcar
import Foundation
import WireFormats

/// The model suite's verdicts: every answer judged against the `ReferenceModel` as it arrives, and the store
/// and the fake compared with it at every quiescent point.
extension ModelEpisode {
    // MARK: Answers

    /// Takes every answer that arrived; with none, waits a moment, then lets held answers go or the storage
    /// lock end, so that nothing waits on the driver (these choices only shape interleavings, never a verdict).
    func waitForProgress() throws {
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

    func collectAnswers() throws -> Int {
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

    func checkNotifications(_ inbox: AgentProcess.Inbox, slot: Int) throws {
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
    func judge(_ op: ModelOperation, _ answer: JSONValue) throws {
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
                if !possible.contains(owner), !strictSnapshots,
                    model.mayHaveHeld(op.key, owner, since: agentStarted[op.slot])
                {
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
        if op.isWrite, answer.isSuccess { spentMayStay.remove(op.key) }
    }

    /// A save answered `storageError` is kept in memory by its agent and may be written until that agent dies.
    func outcome(_ answer: JSONValue, _ op: ModelOperation) -> ReferenceModel.Outcome {
        if answer.isSuccess { return .happened }
        return answer.errorKind == "storageError" ? .mayStillHappen(slot: op.slot) : .didNotHappen
    }

    static func describe(_ states: Set<String?>) -> String {
        "{" + states.map { $0 ?? "no tokens" }.sorted().joined(separator: ", ") + "}"
    }

    // MARK: Quiescent points

    /// With nothing in flight: every key's row is a state the model allows, its refresh token is the fake's
    /// live one of that grant, and Smartcar refused nothing. After a storage lock the agents write the tokens
    /// they kept in memory in the background (a pause doubling up to 1 s, with no event to wait on), so the
    /// store is read again for up to 30 s until it settles.
    func quiescentCheck() throws {
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

    func storeProblems() throws -> [String] {
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
    func checkRefusals() throws {
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
}
