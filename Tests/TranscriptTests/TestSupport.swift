import Foundation
import TranscriptReplay

/// Where the tests find the agent binary and the transcripts.
enum Paths {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let scenarios = repository.appendingPathComponent("Protocol/transcripts")
    static let broken = repository.appendingPathComponent("Tests/TranscriptTests/broken")

    /// The `smartcar-auth-agent` this build made (next to the test bundle on Linux).
    static var agent: String {
        let bundle = Bundle.main.bundleURL
        let products = bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
        return products.appendingPathComponent("smartcar-auth-agent").path
    }

    /// The names of the `.transcript` files in `folder`, sorted.
    static func transcripts(in folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".transcript") }.sorted()
    }
}

/// A private temporary folder, removed when the value goes away.
final class TemporaryFolder: Sendable {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("transcript-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
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
