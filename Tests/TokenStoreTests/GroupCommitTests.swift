import Dispatch
import Foundation
import Testing

@testable import TokenStore

@Suite struct GroupCommitTests {
    @Test func aFailingWriteDoesNotUndoTheOthersInItsGroup() async throws {
        let store = try SQLiteTokenStore.open(.memory, application: testApplication)
        let (entered, enteredSignal) = AsyncStream.makeStream(of: Void.self)
        let gate = DispatchSemaphore(value: 0)
        // Occupy the store's queue so that the writes below line up and are committed as one group.
        async let blocker: Void = store.queue.read { _ in
            enteredSignal.yield()
            gate.wait()
        }
        for await _ in entered { break }

        async let saves = withThrowingTaskGroup(of: StoredToken.self) { group in
            for index in 0..<4 { group.addTask { try await store.save(sampleToken("user-\(index)")) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        async let failing: Void = store.queue.write { connection throws(StoreError) in
            _ = try TokenRows.writeNewTokens(
                sampleToken("ghost"), testApplication, lastRefreshedAt: nil, keepConnectOptions: false, connection)
            throw StoreError(.io, "injected failure")
        }
        while store.queue.pendingWriteCount < 5 { await Task.yield() }
        gate.signal()

        try await blocker
        #expect(try await saves.count == 4)
        do {
            try await failing
            Issue.record("the failing write succeeded")
        } catch {
            #expect(error as? StoreError == StoreError(.io, "injected failure"))
        }
        #expect(try await store.list().map(\.key) == ["user-0", "user-1", "user-2", "user-3"])
    }
}
