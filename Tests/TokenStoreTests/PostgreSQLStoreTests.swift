import AgentSupport
import AgentTestSupport
import Dispatch
import Foundation
import Sealing
import Synchronization
import Testing

@testable import TokenStore

/// What only the PostgreSQL store has to show: leases timed by the database, migrations raced by many agents,
/// faults of the server and of connections, and no password in any message.
@Suite struct PostgreSQLStoreTests {
    /// Two hosts whose clocks are years apart share a lease as the database's clock says: the one whose clock is
    /// far ahead does not steal it, the one whose clock is far behind does not keep it past its end.
    @Test func leasesAreTimedByTheDatabaseClockNotTheCallers() async throws {
        let uri = try await PostgresCluster.shared.createDatabase("clock")
        let (early, late) = (
            try PostgreSQLTokenStore.open(uri, application: testApplication, origin: "early", sealing: testSecrets),
            try PostgreSQLTokenStore.open(uri, application: testApplication, origin: "late", sealing: testSecrets)
        )
        let stored = try await early.save(sampleToken("car"))
        let past = Date(timeIntervalSince1970: 946_684_800)  // 2000
        let future = Date(timeIntervalSince1970: 4_102_444_800)  // 2100
        #expect(try await early.acquireLease("car", owner: "early", duration: 300, now: past) == .acquired(stored))
        guard
            case .heldByOther(let until, _) = try await late.acquireLease(
                "car", owner: "late", duration: 300, now: future)
        else {
            Issue.record("a caller whose clock is ahead took a lease the database says is held")
            return
        }
        #expect(abs(until.timeIntervalSinceNow - 300) < 3600, "the lease ends 300 s after the database's now")
        // A lease that ended by the database's clock is taken over, whatever the caller's clock says.
        #expect(try await early.acquireLease("car", owner: "early", duration: -1, now: future) == .acquired(stored))
        #expect(try await late.acquireLease("car", owner: "late", duration: 300, now: past) == .acquired(stored))
        await early.close()
        await late.close()
    }

    /// A host paused past its lease's end: another host took the lease and refreshed; the paused one's commit
    /// writes nothing over the newer grant, and the log says it was superseded.
    @Test func aCommitAfterTheLeaseWasLostAndTakenIsFencedOut() async throws {
        let uri = try await PostgresCluster.shared.createDatabase("fence")
        let log = LogCapture()
        let paused = try PostgreSQLTokenStore.open(
            uri, application: testApplication, origin: "paused", sealing: testSecrets, logger: log.logger)
        let other = try PostgreSQLTokenStore.open(
            uri, application: testApplication, origin: "other", sealing: testSecrets)
        try await paused.save(sampleToken("car"))
        // A lease already over by the database's clock: as if the host had been stopped past its end.
        guard
            case .acquired(let spentByPaused?) = try await paused.acquireLease(
                "car", owner: "paused", duration: -1, now: Date())
        else { throw Failure("no lease") }
        guard
            case .acquired(let spentByOther?) = try await other.acquireLease(
                "car", owner: "other", duration: 60, now: Date())
        else { throw Failure("the expired lease was not taken over") }
        guard
            case .committed(let newer) = try await other.commitRefresh(
                sampleToken("car", refresh: "refresh-other"), owner: "other", replacing: spentByOther)
        else { throw Failure("the lease holder's commit was refused") }
        let late = try await paused.commitRefresh(
            sampleToken("car", refresh: "refresh-paused"), owner: "paused", replacing: spentByPaused)
        #expect(late == .superseded(current: newer))
        #expect(try await other.load("car") == newer)
        #expect(log.lines(at: .warning).contains { $0.contains("superseded") && $0.contains("'paused'") })
        await paused.close()
        await other.close()
    }

    /// Many agents opening a new database at once build the schema once and record each application's sealing key
    /// once; none fails.
    @Test func manyStoresMigrateAFreshDatabaseAtOnce() async throws {
        let uri = try await PostgresCluster.shared.createDatabase("migrate")
        let outcomes = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            do {
                let store = try PostgreSQLTokenStore.open(
                    uri, application: "app-\(index % 2)", origin: "\(index)",
                    sealing: StoreSecrets(current: .clientSecret(SecretBytes(Array("secret-\(index % 2)".utf8)))))
                store.listener.stop()
                outcomes.withLock { $0.append("opened") }
            } catch {
                outcomes.withLock { $0.append("\(error)") }
            }
        }
        #expect(outcomes.withLock { $0 } == Array(repeating: "opened", count: 8))
        let database = String(uri.split(separator: "/").last!)
        #expect(
            try await PostgresCluster.shared.psql("SELECT version FROM smartcar_auth.store_meta", database: database)
                == "\(PostgreSQLSchema.currentVersion)")
        #expect(
            try await PostgresCluster.shared.psql("SELECT count(*) FROM smartcar_auth.sealing_keys", database: database)
                == "2")
    }

    @Test func aNewerSchemaIsRefused() async throws {
        let uri = try await PostgresCluster.shared.createDatabase("future")
        try PostgreSQLTokenStore.open(uri, application: testApplication, sealing: testSecrets).listener.stop()
        let database = String(uri.split(separator: "/").last!)
        try await PostgresCluster.shared.psql("UPDATE smartcar_auth.store_meta SET version = 99", database: database)
        #expect {
            try PostgreSQLTokenStore.open(uri, application: testApplication, sealing: testSecrets)
        } throws: { ($0 as? StoreError)?.kind == .futureSchema }
    }

    /// libpq takes text parameters as C strings: a value with a NUL byte would be stored cut short, so the store
    /// refuses it and keeps the row it had. Unsealed (a sealed value is base64 text, whatever bytes it holds): the
    /// database is dropped at the end, so its plaintext is not among the stores the run leaves.
    @Test func aValueWithANULIsRefusedNotCutShort() async throws {
        let uri = try await PostgresCluster.shared.createDatabase("nul")
        let store = try PostgreSQLTokenStore.open(uri, application: testApplication)
        let stored = try await store.save(sampleToken())
        await #expect(throws: StoreError.self) { try await store.save(sampleToken(refresh: "refresh\u{0}cut")) }
        await #expect(throws: StoreError.self) {
            try await store.commitRefresh(sampleToken(refresh: "r\u{0}"), owner: "A", replacing: stored)
        }
        #expect(try await store.load("user-1") == stored)
        await store.close()
        try await PostgresCluster.shared.psql("DROP DATABASE \(URL(string: uri)!.lastPathComponent) WITH (FORCE)")
    }

    @Test func aBadSchemaNameIsRefused() {
        for name in ["", "Upper", "1st", "with space", "quote\"d", String(repeating: "a", count: 49)] {
            #expect(throws: StoreError.self) {
                try PostgreSQLTokenStore.open(
                    "postgresql://127.0.0.1:1/x", application: "", schema: name, sealing: testSecrets)
            }
        }
    }

    /// Connections killed with `pg_terminate_backend` are replaced on their next use; a server stopped and started
    /// again fails calls with `.unavailable` meanwhile, then serves them; the follower reports every change made
    /// while its listener was disconnected, and `waitForChange` returns once one arrives. No message holds the
    /// password of the URI.
    @Test func killedConnectionsAndARestartedServerAreSurvived() async throws {
        let cluster = try await onOwnThread { try PostgresCluster() }
        let password = "hunter2-never-logged"
        let created = try cluster.createDatabase("faults")
        let uri = created.replacingOccurrences(of: "postgres@", with: "postgres:\(password)@") + "?password=\(password)"
        let log = LogCapture()
        let reader = try PostgreSQLTokenStore.open(
            uri, application: testApplication, origin: "reader", sealing: testSecrets, logger: log.logger)
        let writer = try PostgreSQLTokenStore.open(
            uri, application: testApplication, origin: "writer", sealing: testSecrets, logger: log.logger)
        #expect(!reader.displayName.contains(password))
        let follower = try await reader.changeFollower(after: try await reader.latestChange())
        #expect(try await follower.poll() == .changes([]))

        #expect(try cluster.terminateAgentConnections() >= 2)
        try await writer.save(sampleToken("killed-1"))
        try await writer.save(sampleToken("killed-2"))
        await follower.waitForChange(upTo: .seconds(600))  // the listener reconnected: returns at once
        #expect(try await follower.poll().keys == ["killed-1", "killed-2"])

        try cluster.stop()
        var errors: [StoreError] = []
        do { _ = try await writer.load("killed-1") } catch { errors.append(error) }
        do { try await writer.save(sampleToken("never")) } catch { errors.append(error) }
        #expect(errors.map(\.kind) == [.unavailable, .unavailable])
        try cluster.start()
        try await eventually { try await writer.save(sampleToken("after-restart")) }
        await follower.waitForChange(upTo: .seconds(600))
        #expect(try await eventually { try await follower.poll() }.keys == ["after-restart"])
        #expect(try await reader.load("killed-2")?.refreshToken == sampleToken("killed-2").refreshToken)

        for text in errors.map(\.description) + log.all { #expect(!text.contains(password), "\(text)") }
        await follower.close()
        await reader.close()
        await writer.close()
    }

    /// Prints the median of one refresh's lease plus fenced commit on a loopback server, of a store's open, and
    /// the rate of 4 stores refreshing at once (the numbers are reported; speed is not asserted in unit tests).
    @Test func leaseAndCommitMedian() async throws {
        let uri = try await PostgresCluster.shared.createDatabase("timing")
        let store = try PostgreSQLTokenStore.open(uri, application: testApplication, sealing: testSecrets)
        var current = try await store.save(sampleToken("car"))
        var samples: [Duration] = []
        for round in 0..<200 {
            let start = ContinuousClock.now
            guard
                case .acquired(let spent?) = try await store.acquireLease("car", owner: "me", duration: 30, now: Date())
            else { throw Failure("no lease") }
            guard
                case .committed(let written) = try await store.commitRefresh(
                    sampleToken("car", refresh: "refresh-\(round)"), owner: "me", replacing: spent)
            else { throw Failure("superseded") }
            samples.append(ContinuousClock.now - start)
            current = written
        }
        #expect(current.generation == 201)
        print("PostgreSQL lease + fenced commit, median of 200: \(samples.sorted()[100])")

        // Cold start: opening a store on a database whose schema exists (connect, pooler probe, schema check).
        var opens: [Duration] = []
        for _ in 0..<21 {
            let start = ContinuousClock.now
            let opened = try PostgreSQLTokenStore.open(uri, application: testApplication, sealing: testSecrets)
            opens.append(ContinuousClock.now - start)
            await opened.close()
        }
        print("PostgreSQL store open, median of 21: \(opens.sorted()[10])")

        // Many at once: 4 stores (agents) refreshing 800 keys, 32 at a time each.
        let stores = try (0..<4).map {
            try PostgreSQLTokenStore.open(uri, application: testApplication, origin: "\($0)", sealing: testSecrets)
        }
        let keys = (0..<800).map { "key-\($0)" }
        for key in keys { try await store.save(sampleToken(key)) }
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, agent) in stores.enumerated() {
                let mine = keys.enumerated().filter { $0.offset % 4 == index }.map(\.element)
                for lane in 0..<32 {
                    group.addTask {
                        for key in mine.enumerated().filter({ $0.offset % 32 == lane }).map(\.element) {
                            guard
                                case .acquired(let spent?) = try await agent.acquireLease(
                                    key, owner: agent.origin, duration: 30, now: Date())
                            else { throw Failure("no lease on \(key)") }
                            guard
                                case .committed = try await agent.commitRefresh(
                                    sampleToken(key, refresh: "rotated"), owner: agent.origin, replacing: spent)
                            else { throw Failure("superseded") }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - start
        print(
            "PostgreSQL 4 stores × 32 concurrent: 800 lease + commit in \(elapsed) (\(800 / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)) per second)"
        )
        for agent in stores { await agent.close() }
        await store.close()
    }
}

extension ChangeBatch {
    /// The keys of the changes (none for `.fellBehind`).
    fileprivate var keys: [String] {
        guard case .changes(let changes) = self else { return [] }
        return changes.map(\.key)
    }
}

/// Runs `body` until it stops failing with `.unavailable` (the store reconnects with backoff after the server
/// came back); gives up after a minute.
@discardableResult
private func eventually<T>(_ body: () async throws -> T) async throws -> T {
    let deadline = ContinuousClock.now + .seconds(60)
    while true {
        do {
            return try await body()
        } catch let error as StoreError where error.kind == .unavailable && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

private struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A transaction-level pooler breaks the session features the store needs: the store refuses to open through
/// one, with an error that says so, and opens through a session-level one.
@Suite struct PostgreSQLPoolerTests {
    @Test func aTransactionLevelPoolerIsRefusedASessionLevelOneWorks() async throws {
        let cluster = try await PostgresCluster.shared
        let database = String(try cluster.createDatabase("pooler").split(separator: "/").last!)
        let transactionPool = try cluster.pgBouncer(poolMode: "transaction")
        let sessionPool = try cluster.pgBouncer(poolMode: "session")
        let refusal = try await eventuallyAnswered {
            try PostgreSQLTokenStore.open(
                transactionPool.uri(database: database), application: testApplication, sealing: testSecrets)
        }
        guard case .failure(let error) = refusal else {
            Issue.record("opened through a transaction-level pooler")
            return
        }
        #expect(error.kind == .io)
        #expect(error.message.contains("transaction-level pooler"))
        guard
            case .success(let store) = try await eventuallyAnswered({
                try PostgreSQLTokenStore.open(
                    sessionPool.uri(database: database), application: testApplication, sealing: testSecrets)
            })
        else { throw Failure("could not open through a session-level pooler") }
        try await store.save(sampleToken("car"))
        #expect(try await store.count() == 1)
        await store.close()
    }

    /// Opens until the pooler, just started, accepts connections (a minute at most); the store's answer.
    private func eventuallyAnswered(
        _ open: () throws -> PostgreSQLTokenStore
    ) async throws -> Result<PostgreSQLTokenStore, StoreError> {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                return .success(try open())
            } catch let error as StoreError where error.kind == .unavailable && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            } catch let error as StoreError {
                return .failure(error)
            }
        }
    }
}
