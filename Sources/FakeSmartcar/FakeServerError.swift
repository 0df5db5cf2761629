#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the server could not start.
public struct FakeServerError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var errno: Int32
    public var description: String { "\(operation) failed: \(String(cString: strerror(errno)))" }
}
