import AgentSupport
import AgentTestSupport
import FakeSmartcar
import Foundation
import Testing

@testable import AuthAgent
@testable import TokenStore

/// Tokens whose save answered `storageError` are written again in the background, but never over a later write
/// of their key: another agent's store, refresh or forget that landed meanwhile wins (linearizability: the later
/// operation wins), and so does this agent's own forget, even one that failed too. Unsealed: the saboteur's
/// triggers match a plaintext refresh token, so the fixture's folder is excluded from the run's scan of its stores.
@Suite struct FailedSaveRetryTests {
    enum LaterWrite: String, CaseIterable, Sendable {
        case store, refresh, forget
    }

    /// Triggers another connection installs: writing the refresh token `refused` fails (as on a full disk, but
    /// for these tokens only, so another agent's writes go through), reads work.
    static func refuse(_ refused: String) -> [String] {
        ["INSERT", "UPDATE"].map { statement in
            """
            CREATE TRIGGER refuse_\(statement.lowercased()) BEFORE \(statement) ON tokens
            WHEN NEW.refresh_token = '\(refused)'
            BEGIN SELECT RAISE(ABORT, 'the test refuses these tokens'); END
            """
        }
    }

    static let refusedTokens = StoredToken(
        key: "car", accessToken: "access-A", refreshToken: "refresh-A-refused",
        expiresAt: Date().addingTimeInterval(7200), refreshExpiresAt: nil, scope: nil, lastRefreshedAt: nil)

    func currentRow(_ fixture: ManagerFixture) async throws -> StoredToken? {
        try await SQLiteTokenStore.open(.file(fixture.storePath), application: FakeSmartcar.Options().clientID)
            .load("car")
    }

    @Test(.timeLimit(.minutes(2)), arguments: LaterWrite.allCases)
    func anotherAgentsLaterWriteIsNotOverwritten(laterWrite: LaterWrite) async throws {
        let fixture = try ManagerFixture()
        try TestEvidence.exclude(fixture.folder, because: "FailedSaveRetryTests: triggers match plaintext tokens")
        fixture.gate.open()
        let (first, second) = (
            try fixture.manager(owner: "manager-A", sealing: nil), try fixture.manager(owner: "manager-B", sealing: nil)
        )
        _ = try await fixture.storeGrant("car", in: first, expiresIn: 7200)
        let saboteur = try SQLiteConnection(path: fixture.storePath, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        defer { saboteur.close() }
        saboteur.setBusyTimeout(milliseconds: 30_000)
        for sql in Self.refuse(Self.refusedTokens.refreshToken) { try saboteur.execute(sql) }

        await #expect(throws: AgentError.self) { try await first.save(Self.refusedTokens, kind: .stored) }
        switch laterWrite {
        case .store: _ = try await fixture.storeGrant("car", in: second, expiresIn: 7200)
        case .refresh: _ = try await second.token(for: "car", minValidity: 0, forceRefresh: true)
        case .forget: #expect(try await second.forget("car"))
        }
        let later = try await currentRow(fixture)

        // The store recovers; the first manager's pending tokens are settled, and the later write stands.
        try saboteur.execute("DROP TRIGGER refuse_insert")
        try saboteur.execute("DROP TRIGGER refuse_update")
        #expect(await first.drainUnsaved(within: 60) == [])
        #expect(try await currentRow(fixture) == later, "the failed save was written over the later \(laterWrite)")
    }

    @Test(.timeLimit(.minutes(2))) func aForgetThatFailsTooDropsTheTokensOfTheFailedSave() async throws {
        let fixture = try ManagerFixture()
        try TestEvidence.exclude(fixture.folder, because: "FailedSaveRetryTests: triggers match plaintext tokens")
        let manager = try fixture.manager(busyTimeout: .milliseconds(20), sealing: nil)
        let stored = try await fixture.storeGrant("car", in: manager, expiresIn: 7200)
        let saboteur = try SQLiteConnection(path: fixture.storePath, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        defer { saboteur.close() }
        saboteur.setBusyTimeout(milliseconds: 30_000)
        for sql in Self.refuse(Self.refusedTokens.refreshToken) { try saboteur.execute(sql) }
        try saboteur.execute(
            "CREATE TRIGGER refuse_delete BEFORE DELETE ON tokens BEGIN SELECT RAISE(ABORT, 'no deletes'); END")

        await #expect(throws: AgentError.self) { try await manager.save(Self.refusedTokens, kind: .stored) }
        await #expect(throws: AgentError.self) { try await manager.forget("car") }

        for trigger in ["refuse_insert", "refuse_update", "refuse_delete"] {
            try saboteur.execute("DROP TRIGGER \(trigger)")
        }
        #expect(await manager.drainUnsaved(within: 60) == [])
        // Neither the save nor the forget happened: the key holds what it held before both.
        #expect(try await currentRow(fixture) == stored)
    }
}
