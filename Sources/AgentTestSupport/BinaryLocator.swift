import Foundation

/// Where SwiftPM put the binaries this build made: next to the running test bundle or executable.
package enum BinaryLocator {
    /// The products folder (`.build/debug`, `.build/release`, …) of the running code.
    package static var productsFolder: URL {
        #if os(Linux)
            let me =
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0]
            return URL(fileURLWithPath: me).deletingLastPathComponent()
        #else
            let bundle = Bundle.main.bundleURL
            return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
        #endif
    }

    /// The `smartcar-auth-agent` of this build.
    package static var agent: String { productsFolder.appendingPathComponent("smartcar-auth-agent").path }

    /// The `fake-smartcar` of this build.
    package static var fakeSmartcar: String { productsFolder.appendingPathComponent("fake-smartcar").path }
}
