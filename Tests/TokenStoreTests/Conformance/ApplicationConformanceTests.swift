import Foundation
import Testing

@testable import TokenStore

/// Rows bound to their application: two applications share a place without seeing each other's keys, and rows
/// from before the upgrade go to the first application that opens it.
@Suite struct ApplicationConformanceTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test(arguments: Backend.all) func twoApplicationsKeepKeysOfTheSameNameApart(backend: Backend) async throws {
        let place = try await backend.makePlace()
        let (live, test) = (try place.open("live-app"), try place.open("test-app"))
        let liveRow = try await live.save(sampleToken("car", refresh: "refresh-live"))
        let testRow = try await test.save(sampleToken("car", refresh: "refresh-test"))
        try await test.save(sampleToken("test-only", refresh: "refresh-test-only"))
        #expect(liveRow.generation == 1 && testRow.generation == 1)
        #expect(try await live.load("car") == liveRow)
        #expect(try await live.list().map(\.key) == ["car"])
        #expect(try await test.list().map(\.key) == ["car", "test-only"])
        #expect(try await live.count() == 1)
        #expect(try await live.lookup("car") == .found(liveRow))
        #expect(try await live.lookup("test-only") == .otherApplication)
        #expect(try await live.lookup("nobody") == .unknown)
        #expect(try await live.load("test-only") == nil)
        // Nothing one application does reaches the other's rows.
        #expect(try await live.markNeedsReauth("test-only", rejectedRefreshToken: "refresh-test-only") == false)
        #expect(try await live.acquireLease("test-only", owner: "live", duration: 30, now: now) == .acquired(nil))
        #expect(try await live.releaseLease("car", owner: "test") == false)
        #expect(try await live.delete("test-only") == false)
        #expect(
            try await live.keysWithRefreshExpiringBefore(.distantFuture, limit: 10) == ["car"])
        #expect(try await live.delete("car"))
        #expect(try await test.load("car") == testRow)
        #expect(try await live.lookup("car") == .otherApplication)
    }

    @Test(arguments: Backend.all) func theFirstApplicationAfterTheUpgradeClaimsTheOldRows(backend: Backend) async throws
    {
        var old = sampleToken("legacy", access: "access-secret-old", refresh: "refresh-secret-old")
        old.generation = 7
        let place = try await backend.makeLegacyPlace([old, sampleToken("other-legacy")])
        // A store without an application (an agent without client credentials, so unsealed) sees the unclaimed
        // rows and claims nothing.
        #expect(try await place.open("", sealing: nil).list().map(\.key) == ["legacy", "other-legacy"])
        let log = LogCapture()
        let first = try place.open("first-app", logger: log.logger)
        #expect(try await first.load("legacy") == old)
        #expect(try await first.count() == 2)
        let notices = log.lines(at: .notice).filter { !$0.contains("sealed") }
        #expect(
            notices.count == 1 && notices.first?.contains("2 keys") == true
                && notices.first?.contains("first-app") == true)
        #expect(log.all.allSatisfy { !$0.contains("access-secret") && !$0.contains("refresh-secret") })
        // Claimed once: the next application finds none, and opening again claims nothing more.
        let secondLog = LogCapture()
        #expect(try await place.open("second-app", logger: secondLog.logger).count() == 0)
        #expect(try await place.open("first-app", logger: secondLog.logger).count() == 2)
        #expect(try await place.open("", sealing: nil).count() == 0)
        #expect(secondLog.lines(at: .notice).isEmpty)
    }
}
