import AgentSupport
import AgentTestSupport
import Foundation
import Sealing
import Synchronization

@testable import TokenStore

#if canImport(Glibc)
    import Glibc
#endif

extension TemporaryFolder {
    /// Where a test's store lives: a `state` folder the store creates itself (so its mode is the store's doing).
    var storePath: String { file("state/tokens.sqlite3") }

    func entries(of folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }
}

/// Collects log lines so tests can assert what was logged (and that no token leaked into a line).
final class LogCapture: Sendable {
    private let lines = Mutex<[(LogLevel, String)]>([])

    var logger: Logger {
        Logger(label: "test", level: .trace) { level, line in self.lines.withLock { $0.append((level, line)) } }
    }

    func lines(at level: LogLevel) -> [String] { lines.withLock { $0.filter { $0.0 == level }.map(\.1) } }
    var all: [String] { lines.withLock { $0.map(\.1) } }
}

func mode(of path: String) -> UInt32? {
    var info = stat()
    return stat(path, &info) == 0 ? UInt32(info.st_mode) & 0o7777 : nil
}

func bytes(of path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { Array($0) }
}

/// The secrets test stores are sealed with (a client secret, as the agent's default).
let testSecrets = secrets("test-client-secret")

/// Secrets from a client secret, with the previous one of a rotation.
func secrets(_ secret: String, previous: String? = nil) -> StoreSecrets {
    StoreSecrets(
        current: .clientSecret(SecretBytes(Array(secret.utf8))),
        previous: previous.map { .clientSecret(SecretBytes(Array($0.utf8))) })
}

/// A token with recognisable, exactly representable dates (its values recorded for the run's scan of its stores).
func sampleToken(
    _ key: String = "user-1", access: String = "access-secret-1", refresh: String = "refresh-secret-1"
) -> StoredToken {
    TestEvidence.record([
        StoredToken(
            key: key,
            accessToken: access,
            refreshToken: refresh,
            expiresAt: Date(timeIntervalSince1970: 1_700_007_200.5),
            refreshExpiresAt: Date(timeIntervalSince1970: 1_705_184_000.25),
            scope: "read_odometer read_vehicle_info",
            lastRefreshedAt: nil)
    ])[0]
}

/// Runs raw SQL against a store file through a second connection (what another process would do).
func rawSQL(_ path: String, _ sql: String) throws {
    let connection = try SQLiteConnection(path: path, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
    defer { connection.close() }
    try connection.execute(sql)
}

/// The application (client id) the tests open their stores for.
let testApplication = "app-under-test"
