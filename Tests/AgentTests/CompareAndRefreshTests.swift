import AgentSupport
import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing

@testable import AuthAgent
@testable import TokenStore

/// `getToken`'s `rejectedToken` (`TokenManager.token(for:minValidity:forceRefresh:rejected:)`), searched: seeded
/// rounds of callers spread over two managers on one store (two agents), in random order (racing each other and the refresh), each reporting the
/// key's current token, a token it held before, or nothing, against a reference of the key's current token.
@Suite struct CompareAndRefreshTests {
    private enum Caller {
        case reportsCurrent, reportsStale, asks
    }

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func reportsOfTheCurrentTokenRefreshOnceStaleReportsNever(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        let fixture = try ManagerFixture()
        let managers = [try fixture.manager(owner: "manager-A"), try fixture.manager(owner: "manager-B")]
        fixture.gate.open()
        var current = try await fixture.storeGrant("car", in: managers[0], expiresIn: 7200).accessToken
        var history: [String] = []
        for round in 0..<12 {
            let callers = (0..<Int.random(in: 1...16, using: &random)).map { _ -> (Caller, TokenManager) in
                let kinds: [Caller] =
                    history.isEmpty ? [.reportsCurrent, .asks] : [.reportsCurrent, .reportsStale, .asks]
                return (kinds.randomElement(using: &random)!, managers.randomElement(using: &random)!)
            }
            let refreshes = callers.contains { $0.0 == .reportsCurrent } ? 1 : 0
            let stale = history.randomElement(using: &random)
            let before = fixture.fake.count(.token)
            let reported = current
            let answers = try await withThrowingTaskGroup(of: (Caller, String).self) { group in
                for (kind, manager) in callers {
                    let rejected: String? =
                        switch kind {
                        case .reportsCurrent: reported
                        case .reportsStale: stale
                        case .asks: nil
                        }
                    group.addTask {
                        let token = try await manager.token(
                            for: "car", minValidity: 300, forceRefresh: false, rejected: rejected)
                        return (kind, token.accessToken)
                    }
                }
                var answers: [(Caller, String)] = []
                for try await answer in group { answers.append(answer) }
                return answers
            }
            #expect(fixture.fake.count(.token) - before == refreshes, "round \(round)")
            let store = try SQLiteTokenStore.open(
                .file(fixture.storePath), application: FakeSmartcar.Options().clientID, sealing: agentSecrets)
            let row = try #require(try await store.load("car"))
            if refreshes > 0 {
                #expect(row.accessToken != reported)
                history.append(reported)
                current = row.accessToken
            }
            for (kind, answer) in answers {
                switch kind {
                case .reportsCurrent: #expect(answer == current, "round \(round)")
                case .reportsStale, .asks: #expect(answer == current || answer == reported, "round \(round)")
                }
            }
        }
    }
}
