/// The suites by name, in the order they run.
enum Suites {
    struct Entry: Sendable {
        var name: String
        var run: @MainActor (Harness, Report) async throws -> Void
    }

    static let all: [Entry] = [
        Entry(name: "fuzz") { harness, report in try FuzzSuite(harness: harness).run(report) },
        Entry(name: "crash") { harness, report in try await CrashSuite(harness: harness).run(report) },
        Entry(name: "faults") { harness, report in try FaultSuite(harness: harness).run(report) },
        Entry(name: "secrets") { harness, report in try await SecretsSuite(harness: harness).run(report) },
        Entry(name: "race") { harness, report in try await RaceSuite(harness: harness).run(report) },
        Entry(name: "race-postgres") { harness, report in try await PostgresRaceSuite(harness: harness).run(report) },
        Entry(name: "model") { harness, report in try ModelSuite(harness: harness).run(report) },
    ]
}
