import AgentTestSupport
import Foundation
import TranscriptReplay

/// Where the tests find the agent binary and the transcripts.
enum Paths {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let scenarios = repository.appendingPathComponent("Protocol/transcripts")
    static let broken = repository.appendingPathComponent("Tests/TranscriptTests/broken")

    /// The `smartcar-auth-agent` this build made.
    static var agent: String { BinaryLocator.agent }

    /// The names of the `.transcript` files in `folder`, sorted.
    static func transcripts(in folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter {
            $0.hasSuffix(".transcript")
        }.sorted()
    }
}

/// Runs blocking work (pipes, sockets) on a thread of its own, never on the cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// At most a few replays at once: each starts agent processes, and the machine has few cores.
actor ReplaySlots {
    static let shared = ReplaySlots(4)

    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { free = count }

    func run(_ transcript: String, options: ReplayOptions) async -> ReplayResult {
        await acquire()
        let result = await Replay.run(path: transcript, options: options)
        release()
        return result
    }

    private func acquire() async {
        if free > 0 { free -= 1; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}
