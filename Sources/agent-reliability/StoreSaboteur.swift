import Foundation

/// Another program holding a connection to the agent's store (the `sqlite3` shell): it locks the store or
/// makes it refuse writes while the agent runs, as a backup tool or an operator could.
final class StoreSaboteur {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var marks = 0

    /// Opens `path` in `sqlite3` (on PATH, or /usr/bin); `-bail` makes the shell quit at the first error,
    /// so a statement that failed never reports done.
    init(_ path: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sqlite3", "-bail", path]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard run(".timeout 10000") else {
            throw SaboteurError(text: "the sqlite3 shell did not start (is sqlite3 installed?)")
        }
    }

    struct SaboteurError: Error, CustomStringConvertible {
        var text: String
        var description: String { text }
    }

    /// Runs `sql` and waits until the shell has done it; false if it failed (the shell quit).
    @discardableResult
    func run(_ sql: String) -> Bool {
        marks += 1
        let mark = "saboteur-done-\(marks)"
        input.fileHandleForWriting.write(Data("\(sql)\nSELECT '\(mark)';\n".utf8))
        var seen = ""
        while !seen.contains(mark) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return false }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        return true
    }

    /// Takes the store's write lock and keeps it until `unlock` (readers go on; the agent's writes fail
    /// once its busy timeout passes).
    func lock() -> Bool { run("BEGIN EXCLUSIVE; SELECT count(*) FROM tokens;") }

    func unlock() -> Bool { run("ROLLBACK;") }

    /// Makes every write of a new refresh token fail (as a full disk would) until `allowWrites`; lease
    /// writes, which change no token, go through.
    func refuseTokenWrites() -> Bool {
        run(
            """
            CREATE TRIGGER saboteur_refuses_tokens BEFORE UPDATE ON tokens
            WHEN NEW.refresh_token IS NOT OLD.refresh_token
            BEGIN SELECT RAISE(ABORT, 'the saboteur refuses token writes'); END;
            """)
    }

    func allowWrites() -> Bool { run("DROP TRIGGER IF EXISTS saboteur_refuses_tokens;") }

    /// Ends the shell (rolling back whatever it holds).
    func close() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}
