#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why the server could not start.
package struct FakeServerError: Error, CustomStringConvertible, Sendable {
    package var operation: String
    package var errno: Int32
    package var description: String { "\(operation) failed: \(String(cString: strerror(errno)))" }
}
