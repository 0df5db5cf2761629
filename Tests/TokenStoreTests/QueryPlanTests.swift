import AgentTestSupport
import Testing

@testable import TokenStore

/// The store's cost must not grow with the rows of other applications or the length of the change log: SQLite's
/// plan for every statement the store runs looks rows up through an index (`SEARCH`), never reads a whole table
/// (`SCAN`) or sorts in a temporary b-tree. This is what keeps a follower's poll and an application's queries cheap.
@Suite struct QueryPlanTests {
    @Test func noStatementScansATableOrSorts() throws {
        let folder = try TemporaryFolder("tokenstore-test")
        // Opening creates the file with every table and index.
        _ = try SQLiteTokenStore.open(.file(folder.storePath), application: testApplication, sealing: testSecrets)
        let connection = try SQLiteConnection(path: folder.storePath, flags: 0x2 /* SQLITE_OPEN_READWRITE */)
        defer { connection.close() }
        for sql in TokenRows.statements {
            let plan = try connection.prepared("EXPLAIN QUERY PLAN " + sql)
            defer { plan.reset() }
            var details: [String] = []
            while try plan.step() { details.append(plan.text(3)) }
            #expect(
                !details.contains { ($0.hasPrefix("SCAN") && $0 != "SCAN CONSTANT ROW") || $0.contains("TEMP B-TREE") },
                "\(sql)\n\(details)")
        }
    }
}
