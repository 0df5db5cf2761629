import FakeSmartcar
import Foundation
import TokenStore
import WireFormats

/// Token stores of a given size for the agent (SQLite, built with `bulkInsertForBenchmark`) and for the
/// peer (its JSON file), with the same rows: keys `k-0`, `k-1`, … whose tokens have Smartcar's shape
/// (36-character UUIDs), valid for two hours, refresh tokens valid for 50 days (so the agent's background
/// refresh of idle keys leaves them alone).
enum StoreFixtures {
    static let application = FakeSmartcar.Options().clientID
    /// What the benchmarked agents seal their stores with (the fakes' client secret), so a fixture is sealed as
    /// their own writes are, and an agent never spends its start-up sealing one.
    static let secrets = FakeSmartcar.Options().storeSecrets

    static func key(_ index: Int) -> String { "k-\(index)" }

    static func syntheticToken(_ index: Int, now: Date) -> StoredToken {
        func uuidShaped(_ kind: String) -> String {
            let hex = String(index, radix: 16)
            return kind + "-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - hex.count)) + hex
        }
        return StoredToken(
            key: key(index), accessToken: uuidShaped("aaaaaaaa"), refreshToken: uuidShaped("rrrrrrrr"),
            expiresAt: now.addingTimeInterval(7200), refreshExpiresAt: now.addingTimeInterval(50 * 86_400),
            scope: "read_odometer read_vehicle_info", generation: 1, lastRefreshedAt: now)
    }

    /// An agent store at `path` holding `token(i)` for i in 0..<count, inserted in chunks of 50,000, bound to the
    /// fake Smartcar's application (the one the benchmarked agents are configured with).
    static func buildAgentStore(at path: String, count: Int, token: @escaping @Sendable (Int) -> StoredToken) throws {
        try fill(.sqlite(path), count: count, token: token)
    }

    /// `store` holding `token(i)` for i in 0..<count, inserted in chunks of 50,000 (`sealed`: see `BenchStore.open`).
    static func fill(
        _ benchStore: BenchStore, count: Int, sealed: Bool = true, token: @escaping @Sendable (Int) -> StoredToken
    ) throws {
        let store = try benchStore.open(sealed: sealed)
        for chunk in stride(from: 0, to: count, by: 50_000) {
            let rows = (chunk..<min(count, chunk + 50_000)).map(token)
            try blockingAwait { try await store.bulkInsertForBenchmark(rows) }
        }
        try blockingAwait { await store.close() }
    }

    /// `store` holding `count` keys whose tokens `fake` minted (key i for the user `user` + "-i"), all expired a
    /// minute ago: a refresh storm waiting to happen.
    static func fillExpired(_ store: BenchStore, count: Int, mintedBy fake: FakeSmartcar, user: String) throws {
        let now = Date()
        let pairs = (0..<count).map { fake.mintTokens(userID: "\(user)-\($0)") }
        try fill(store, count: count) { index in
            var token = syntheticToken(index, now: now)
            token.accessToken = pairs[index].accessToken
            token.refreshToken = pairs[index].refreshToken
            token.expiresAt = now.addingTimeInterval(-60)
            return token
        }
    }

    /// The peer's JSON file at `path` with the same rows (what its `save()` writes).
    static func buildPeerStore(at path: String, count: Int, token: (Int) -> StoredToken) throws {
        var text = "{"
        text.reserveCapacity(count * 200)
        var formatted: [Date: String] = [:]  // the synthetic rows share their dates
        func time(_ date: Date) -> String {
            if let text = formatted[date] { return text }
            let text = rfc3339(date)
            formatted[date] = text
            return text
        }
        for index in 0..<count {
            let row = token(index)
            if index > 0 { text += ", " }
            text += #"\#(JSONText.quoted(row.key)): {"accessToken": \#(JSONText.quoted(row.accessToken)), "#
            text += #""refreshToken": \#(JSONText.quoted(row.refreshToken)), "#
            text += #""expiresAt": \#(JSONText.quoted(time(row.expiresAt))), "#
            text += #""refreshExpiresAt": \#(JSONText.quoted(time(row.refreshExpiresAt ?? row.expiresAt)))}"#
        }
        text += "}"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Bytes on disk: the file plus SQLite's `-wal` beside it when there is one.
    static func diskBytes(_ path: String) -> Int {
        [path, path + "-wal"].reduce(0) { total, file in
            total + ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0)
        }
    }

    static func rfc3339(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false))
    }
}
