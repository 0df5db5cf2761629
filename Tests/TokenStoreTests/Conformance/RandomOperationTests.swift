import AgentTestSupport
import Foundation
import Testing

@testable import TokenStore

/// Seeded random sequences of every store operation, by two applications with two stores each on one place,
/// compared answer by answer with `ReferenceModel`. A failure names the seed and the step to replay.
@Suite struct RandomOperationTests {
    static let seeds: [UInt64] = [1, 2, 3, 0x5EED_0013]

    @Test(arguments: Backend.all, seeds)
    func everyAnswerMatchesTheReferenceModel(backend: Backend, seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let place = try await backend.makePlace()
        let applications = ["app-1", "app-2"]
        var stores: [(application: String, store: any TokenStore)] = []
        for application in applications {
            for index in 0..<2 {
                stores.append((application, try place.open(application, origin: "\(application)/\(index)")))
            }
        }
        var model = ReferenceModel()
        let keys = ["a", "b", "c"], owners = ["o1", "o2"], stateNames = (0..<6).map { "s\($0)" }
        var now = Date(timeIntervalSince1970: 1_700_000_000)
        var serial = 0
        var seen: [StoredToken] = []  // rows answered so far: the rows a refresh may have spent
        func token(_ key: String) -> StoredToken {
            serial += 1
            return TestEvidence.record([
                StoredToken(
                    key: key, accessToken: "at-\(serial)", refreshToken: "rt-\(serial)",
                    expiresAt: now.addingTimeInterval(3600),
                    refreshExpiresAt: Bool.random(using: &random)
                        ? nil : now.addingTimeInterval(Double(Int.random(in: 100...900, using: &random))),
                    scope: Bool.random(using: &random) ? "read_odometer" : nil,
                    connectOptions: Bool.random(using: &random) ? nil : "options-\(serial)")
            ])[0]
        }

        for step in 0..<400 {
            now = now.addingTimeInterval(Double(Int.random(in: 0...12, using: &random)))
            let (application, store) = stores.randomElement(using: &random)!
            let origin = store.origin
            let key = keys.randomElement(using: &random)!
            let owner = owners.randomElement(using: &random)!
            let context = "\(backend.name) seed \(seed) step \(step)"
            var matches = true
            switch Int.random(in: 0..<12, using: &random) {
            case 0:
                let kind: ChangeKind = Bool.random(using: &random) ? .stored : .exchanged
                let fresh = token(key)
                let written = try await store.save(fresh, kind: kind)
                matches = written == model.save(application, fresh, kind: kind, origin: origin)
                seen.append(written)
            case 1:
                matches = try await store.delete(key) == model.delete(application, key, origin: origin)
            case 2:
                let rejected =
                    Bool.random(using: &random) ? model.load(application, key)?.refreshToken ?? "rt-0" : "rt-0"
                matches =
                    try await store.markNeedsReauth(key, rejectedRefreshToken: rejected)
                    == model.markNeedsReauth(application, key, rejected: rejected, origin: origin)
            case 3:
                let outcome = try await store.acquireLease(key, owner: owner, duration: 30, now: now)
                matches = outcome == model.acquireLease(application, key, owner: owner, duration: 30, now: now)
            case 4, 5:
                let candidates = seen.filter { $0.key == key }
                guard let spent = candidates.randomElement(using: &random) else { continue }
                var rotated = token(key)
                rotated.connectOptions = nil
                let fenced = Int.random(in: 0..<5, using: &random) != 0
                let outcome = try await store.commitRefresh(
                    rotated, owner: owner, replacing: fenced ? spent : nil, now: now)
                matches =
                    outcome
                    == model.commitRefresh(
                        application, rotated, owner: owner, spent: fenced ? spent : nil, now: now, origin: origin)
                if case .committed(let written) = outcome { seen.append(written) }
            case 6:
                matches =
                    try await store.releaseLease(key, owner: owner)
                    == model.releaseLease(application, key, owner: owner)
            case 7:
                let issued = ConnectState(
                    state: stateNames.randomElement(using: &random)!, key: Bool.random(using: &random) ? key : nil,
                    options: "o-\(step)",
                    expiresAt: now.addingTimeInterval(Double(Int.random(in: 5...60, using: &random))))
                try await store.issueState(issued, capacity: 2, now: now)
                model.issueState(application, issued, capacity: 2, now: now)
            case 8:
                let name = stateNames.randomElement(using: &random)!
                matches =
                    try await store.consumeState(name, now: now) == model.consumeState(application, name, now: now)
            case 9:
                let (lookup, list, count) = (
                    try await store.lookup(key), try await store.list(), try await store.count()
                )
                matches =
                    lookup == model.lookup(application, key) && list == model.list(application)
                    && count == list.count
            case 10:
                let date = now.addingTimeInterval(500)
                matches =
                    try await store.keysWithRefreshExpiringBefore(date, limit: 2)
                    == model.keysWithRefreshExpiringBefore(application, date, limit: 2)
            default:
                let after = max(0, model.latestChange - Int64.random(in: 0...8, using: &random))
                let (latest, changes) = (
                    try await store.latestChange(), try await store.changes(after: after, limit: 100)
                )
                matches = latest == model.latestChange && changes == .changes(model.changes(application, after: after))
            }
            #expect(matches, "\(context)")
            if !matches { return }
        }
        for (application, store) in stores {
            #expect(try await store.list() == model.list(application), "\(backend.name) seed \(seed): final rows")
        }
    }
}
