import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Severity of a log line; `--log-level` picks the lowest one written.
package enum LogLevel: Int, Comparable, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error

    package init?(name: String) {
        switch name.lowercased() {
        case "trace": self = .trace
        case "debug": self = .debug
        case "info": self = .info
        case "notice": self = .notice
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

    package var name: String { String(describing: self) }

    package static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Writes one line per message to stderr (never stdout: stdout is the protocol).
///
/// Lines are written with a single `write(2)` each, so lines from concurrent tasks never interleave.
/// Callers must never pass secrets; messages are built lazily so a disabled level costs nothing.
package struct Logger: Sendable {
    package let level: LogLevel
    package let label: String
    private let sink: @Sendable (LogLevel, String) -> Void

    /// A logger writing to `fd` (stderr by default) at `level` and above.
    package init(label: String = "smartcar-auth-agent", level: LogLevel = .info, fd: Int32 = STDERR_FILENO) {
        self.init(label: label, level: level) { lineLevel, line in
            let text = "\(Logger.timestamp()) \(lineLevel.name.uppercased()) \(label): \(Logger.oneLine(line))\n"
            Logger.writeLine(text, to: fd)
        }
    }

    /// A logger handing each enabled line to `sink` (tests).
    package init(
        label: String = "smartcar-auth-agent", level: LogLevel = .info,
        sink: @escaping @Sendable (LogLevel, String) -> Void
    ) {
        self.level = level
        self.label = label
        self.sink = sink
    }

    /// A logger that drops everything.
    package static let silent = Logger(level: .error) { _, _ in }

    package func isEnabled(_ lineLevel: LogLevel) -> Bool { lineLevel >= level }

    package func log(_ lineLevel: LogLevel, _ message: @autoclosure () -> String) {
        guard isEnabled(lineLevel) else { return }
        sink(lineLevel, message())
    }

    package func trace(_ message: @autoclosure () -> String) { log(.trace, message()) }
    package func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    package func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    package func notice(_ message: @autoclosure () -> String) { log(.notice, message()) }
    package func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    package func error(_ message: @autoclosure () -> String) { log(.error, message()) }

    /// RFC 3339 in UTC with its offset and milliseconds (`2026-12-02T13:40:00.123Z`): comparable across hosts and
    /// readable by any log tool without guessing the zone.
    private static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)

    private static func timestamp() -> String { Date().formatted(timestampStyle) }

    /// `message` on one line: a multi-line text (libpq's errors have a hint on a second line) has its lines
    /// joined with spaces, so each log line is one message and a start-up error is one line.
    package static func oneLine(_ message: String) -> String {
        guard message.contains(where: \.isNewline) else { return message }
        return message.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    }

    private static func writeLine(_ line: String, to fd: Int32) {
        FileDescriptor.writeAll(fd, line)
    }
}
