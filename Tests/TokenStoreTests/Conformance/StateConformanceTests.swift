import Foundation
import Testing

@testable import TokenStore

/// Connect states: issued by one store, consumed once by any store of the same application, with a TTL and a
/// bounded count per application.
@Suite struct StateConformanceTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    func state(_ name: String, key: String? = "car", ttl: TimeInterval = 600) -> ConnectState {
        ConnectState(
            state: name, key: key, options: #"{"redirectURI":"https://example.com/cb","mode":"test"}"#,
            expiresAt: now.addingTimeInterval(ttl))
    }

    @Test(arguments: Backend.all) func aStateIssuedByOneStoreIsConsumedOnceByAnother(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let (issuer, consumer) = (try place.open(origin: "A"), try place.open(origin: "B"))
        let other = try place.open("other-app")
        try await issuer.issueState(state("s1"), capacity: 10, now: now)
        #expect(try await other.consumeState("s1", now: now) == .unknown)
        #expect(try await consumer.consumeState("s1", now: now.addingTimeInterval(1)) == .valid(state("s1")))
        #expect(try await issuer.consumeState("s1", now: now.addingTimeInterval(2)) == .reused)
        #expect(try await consumer.consumeState("never-issued", now: now) == .unknown)
        // A consumed state is remembered until it would have expired, then pruned.
        #expect(try await issuer.pruneStates(now: now.addingTimeInterval(599)) == 0)
        #expect(try await issuer.pruneStates(now: now.addingTimeInterval(600)) == 1)
        #expect(try await consumer.consumeState("s1", now: now.addingTimeInterval(601)) == .unknown)
    }

    @Test(arguments: Backend.all) func anExpiredStateIsRefused(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let store = try place.open()
        try await store.issueState(state("short", key: nil, ttl: 5), capacity: 10, now: now)
        #expect(try await store.consumeState("short", now: now.addingTimeInterval(5)) == .expired)
        #expect(
            try await store.consumeState("short", now: now.addingTimeInterval(4))
                == .valid(state("short", key: nil, ttl: 5)))
        // Issuing drops the application's expired states.
        try await store.issueState(state("old", ttl: 5), capacity: 10, now: now)
        try await store.issueState(state("new"), capacity: 10, now: now.addingTimeInterval(6))
        #expect(try await store.consumeState("old", now: now) == .unknown)
    }

    @Test(arguments: Backend.all) func theOldestStatesGoBeyondTheCapacityOfTheirApplication(
        backend: Backend
    ) async throws {
        let place = try await backend.makePlace()
        let (store, other) = (try place.open(), try place.open("other-app"))
        try await other.issueState(state("theirs"), capacity: 2, now: now)
        for index in 0..<5 { try await store.issueState(state("s\(index)"), capacity: 3, now: now) }
        for index in 0..<2 { #expect(try await store.consumeState("s\(index)", now: now) == .unknown) }
        for index in 2..<5 {
            #expect(try await store.consumeState("s\(index)", now: now) == .valid(state("s\(index)")))
        }
        #expect(try await other.consumeState("theirs", now: now) == .valid(state("theirs")))
    }

    @Test(arguments: Backend.all) func concurrentConsumersAcrossStoresHaveExactlyOneWinner(
        backend: Backend
    ) async throws {
        let place = try await backend.makePlace()
        let stores = try (0..<3).map { try place.open(origin: "agent-\($0)") }
        let now = self.now
        for round in 0..<10 { try await stores[round % 3].issueState(state("s\(round)"), capacity: 100, now: now) }
        let claims = try await withThrowingTaskGroup(of: StateClaim.self) { group in
            for attempt in 0..<60 {
                group.addTask { try await stores[attempt % 3].consumeState("s\(attempt % 10)", now: now) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(claims.filter { if case .valid = $0 { true } else { false } }.count == 10)
        #expect(claims.filter { $0 == .reused }.count == 50)
    }
}
