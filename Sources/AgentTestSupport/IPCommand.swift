import Foundation

/// Runs iproute2's `ip`, the tool that makes network namespaces and links for `SimulatedHost`.
enum IPCommand {
    /// Where `ip` is installed (nil: iproute2 is missing).
    static let path: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Runs `ip` with `arguments` to its end; throws with what it wrote to stderr if it fails.
    static func run(_ arguments: [String]) throws(IPCommandError) {
        guard let path else { throw IPCommandError("iproute2's `ip` is not installed (apt-get install iproute2)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let errors = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        do { try process.run() } catch { throw IPCommandError("could not run \(path): \(error)") }
        let written = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: written, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw IPCommandError("ip \(arguments.joined(separator: " ")): \(message)")
        }
    }
}

/// A failed `ip` command, with its message.
struct IPCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    /// The name (of a namespace or a link) was taken already.
    var nameTaken: Bool { description.contains("File exists") }
}
