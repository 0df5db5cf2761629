import AgentTestSupport
import Foundation
import Testing

/// The throwaway PostgreSQL server the PostgreSQL store's tests run against.
@Suite struct PostgresClusterTests {
    @Test func startsCreatesADatabaseAndAnswers() throws {
        let cluster = try PostgresCluster()
        let uri = try cluster.createDatabase("cluster")
        let database = String(uri.split(separator: "/").last!)
        #expect(try cluster.psql("SELECT 1", database: database) == "1")
        #expect(try cluster.psql("SHOW fsync") == "on")
        #expect(try cluster.terminateAgentConnections() == 0)
        let path = cluster.path
        try cluster.restart()
        #expect(try cluster.psql("SELECT 2", database: database) == "2")
        _ = consume cluster
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func sharedIsOneServer() async throws {
        async let first = PostgresCluster.shared
        async let second = PostgresCluster.shared
        #expect(try await first === second)
    }
}
