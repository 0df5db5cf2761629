#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Monotonic time in nanoseconds: one `clock_gettime`, cheaper than `ContinuousClock` inside timed loops.
enum Monotonic {
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    static func microseconds(from start: UInt64, to end: UInt64) -> Double { Double(end - start) / 1_000 }
    static func milliseconds(from start: UInt64, to end: UInt64) -> Double { Double(end - start) / 1_000_000 }
}
