import Foundation
import Testing

@testable import FakeSmartcar

/// `peakConcurrentRequests`: what the refresh-storm benchmark reads to check that a client bounds its
/// concurrency against Smartcar.
@Suite struct ConcurrencyPeakTests {
    @Test func sequentialRequestsPeakAtOne() async throws {
        try await withFake { fake in
            for _ in 0..<3 { _ = try await http(fake, "GET", "/v2.0/user") }
            #expect(fake.peakConcurrentRequests == 1)
        }
    }

    @Test func countsRequestsHeldAtOnceButNotControlPaths() async throws {
        let (options, lines) = loggingOptions()
        let fake = try FakeSmartcar(options: options)
        defer { fake.stop() }
        fake.inject(.stall, times: 2)
        let stalled = try (0..<2).map { _ in try RawConnection(port: fake.port) }
        for connection in stalled { try connection.send(requestText("GET", "/v2.0/user")) }
        var seen = 0
        for await line in lines where line.contains("stalled") {
            seen += 1
            if seen == 2 { break }
        }
        _ = try await http(fake, "GET", "/_fake/counts")
        #expect(fake.peakConcurrentRequests == 2)
        _ = try await http(fake, "GET", "/v2.0/user")
        #expect(fake.peakConcurrentRequests == 3)
        fake.reset()
        // The two stalled requests are still held: the peak restarts from them.
        #expect(fake.peakConcurrentRequests == 2)
        withExtendedLifetime(stalled) {}
    }
}
