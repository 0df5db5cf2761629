/// `smartcar-auth-agent/0.1.0 (Linux; x86_64) Swift 6.3`: the token endpoint requires a User-Agent, and
/// this one follows the SDKs' shape (`Smartcar/6.19.1(Linux; x86_64) Python v3.11.7`).
package enum UserAgent {
    package static func value(agentVersion: String) -> String {
        "smartcar-auth-agent/\(agentVersion) (\(operatingSystem); \(architecture)) Swift \(swiftVersion)"
    }

    static var operatingSystem: String {
        #if os(Linux)
            "Linux"
        #elseif os(macOS)
            "macOS"
        #else
            "unknown"
        #endif
    }

    static var architecture: String {
        #if arch(x86_64)
            "x86_64"
        #elseif arch(arm64) && os(Linux)
            "aarch64"
        #elseif arch(arm64)
            "arm64"
        #else
            "unknown"
        #endif
    }

    /// The compiler's language version, major.minor (the patch level is not visible at compile time).
    static var swiftVersion: String {
        #if compiler(>=6.5)
            "6.5+"
        #elseif compiler(>=6.4)
            "6.4"
        #elseif compiler(>=6.3)
            "6.3"
        #elseif compiler(>=6.2)
            "6.2"
        #elseif compiler(>=6.1)
            "6.1"
        #else
            "6.0"
        #endif
    }
}
