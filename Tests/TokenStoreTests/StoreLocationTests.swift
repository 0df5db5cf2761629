import Testing
import TokenStore

@Suite struct StoreLocationTests {
    @Test func explicitStoreWins() {
        let env = ["SMARTCAR_AUTH_STORE": "/data/t.sqlite3", "XDG_STATE_HOME": "/xdg", "HOME": "/home/u"]
        #expect(StoreLocation.defaultLocation(environment: env) == .file("/data/t.sqlite3"))
        #expect(StoreLocation.defaultLocation(environment: ["SMARTCAR_AUTH_STORE": "memory"]) == .memory)
    }

    @Test func xdgStateHomeThenHome() {
        #expect(
            StoreLocation.defaultLocation(environment: ["XDG_STATE_HOME": "/xdg/", "HOME": "/home/u"])
                == .file("/xdg/smartcar-auth-agent/tokens.sqlite3"))
        #expect(
            StoreLocation.defaultLocation(environment: [
                "SMARTCAR_AUTH_STORE": "", "XDG_STATE_HOME": "relative", "HOME": "/home/u",
            ])
                == .file("/home/u/.local/state/smartcar-auth-agent/tokens.sqlite3"))
    }

    @Test func withoutHomeThePasswordDatabaseAnswers() {
        guard case .file(let path) = StoreLocation.defaultLocation(environment: [:]) else {
            Issue.record("expected a file location")
            return
        }
        #expect(path.hasSuffix("/.local/state/smartcar-auth-agent/tokens.sqlite3"))
        #expect(path.hasPrefix("/"))
    }

    @Test func storeArgument() {
        #expect(StoreLocation(argument: "memory") == .memory)
        #expect(StoreLocation(argument: ":memory:") == .memory)
        #expect(StoreLocation(argument: "./tokens.sqlite3") == .file("./tokens.sqlite3"))
        #expect(
            StoreLocation(argument: "postgresql://db.internal/tokens") == .postgres("postgresql://db.internal/tokens"))
        #expect(
            StoreLocation(argument: "postgres://u@db/t?sslmode=require")
                == .postgres("postgres://u@db/t?sslmode=require"))
        #expect(StoreLocation(argument: "./postgresql://x") == .file("./postgresql://x"))
    }
}
