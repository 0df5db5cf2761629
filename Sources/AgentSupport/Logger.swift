#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// Severity of a log line; `--log-level` picks the lowest one written.
public enum LogLevel: Int, Comparable, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error

    public init?(name: String) {
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

    public var name: String { String(describing: self) }

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Writes one line per message to stderr (never stdout: stdout is the protocol).
///
/// Lines are written with a single `write(2)` each, so lines from concurrent tasks never interleave.
/// Callers must never pass secrets; messages are built lazily so a disabled level costs nothing.
public struct Logger: Sendable {
    public let level: LogLevel
    public let label: String
    private let sink: @Sendable (LogLevel, String) -> Void

    /// A logger writing to `fd` (stderr by default) at `level` and above.
    public init(label: String = "smartcar-auth-agent", level: LogLevel = .info, fd: Int32 = STDERR_FILENO) {
        self.init(label: label, level: level) { lineLevel, line in
            Logger.writeLine("\(Logger.timestamp()) \(lineLevel.name.uppercased()) \(label): \(line)\n", to: fd)
        }
    }

    /// A logger handing each enabled line to `sink` (tests).
    public init(label: String = "smartcar-auth-agent", level: LogLevel = .info, sink: @escaping @Sendable (LogLevel, String) -> Void) {
        self.level = level
        self.label = label
        self.sink = sink
    }

    /// A logger that drops everything.
    public static let silent = Logger(level: .error) { _, _ in }

    public func isEnabled(_ lineLevel: LogLevel) -> Bool { lineLevel >= level }

    public func log(_ lineLevel: LogLevel, _ message: @autoclosure () -> String) {
        guard isEnabled(lineLevel) else { return }
        sink(lineLevel, message())
    }

    public func trace(_ message: @autoclosure () -> String) { log(.trace, message()) }
    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    public func notice(_ message: @autoclosure () -> String) { log(.notice, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }

    private static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
    }

    private static func writeLine(_ line: String, to fd: Int32) {
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}
