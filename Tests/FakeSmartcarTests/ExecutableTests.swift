import AgentTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `fake-smartcar` process as other languages' tests use it.
@Suite struct ExecutableTests {
    private struct Started: Sendable {
        var origin: String
        var clientID: String
        var clientSecret: String
        var port: UInt16
    }

    /// Starts the built binary (it sits in the products folder beside the test bundle).
    private func launch(_ arguments: [String]) async throws -> (Process, Pipe, Started, AsyncStream<Int32>) {
        let binary = URL(fileURLWithPath: BinaryLocator.fakeSmartcar)
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestFailure("fake-smartcar not built at \(binary.path)")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let (exits, exit) = AsyncStream<Int32>.makeStream()
        process.terminationHandler = {
            exit.yield($0.terminationStatus); exit.finish()
        }
        try process.run()
        let fd = output.fileHandleForReading.fileDescriptor
        let line = try await blocking { () -> String in
            var bytes: [UInt8] = []
            var byte: UInt8 = 0
            while read(fd, &byte, 1) == 1 {
                if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
                bytes.append(byte)
            }
            throw TestFailure("fake-smartcar printed no line")
        }
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(fields.keys.sorted() == ["clientID", "clientSecret", "origin"])
        let origin = try #require(fields["origin"])
        let portText = origin.split(separator: ":").last.map(String.init) ?? ""
        let port = try #require(UInt16(portText))
        return (
            process, input,
            Started(
                origin: origin, clientID: fields["clientID"] ?? "",
                clientSecret: fields["clientSecret"] ?? "", port: port), exits
        )
    }

    /// The exit status, or a failure if the process outlives `seconds` (then it is killed).
    private func exitStatus(_ process: Process, _ exits: AsyncStream<Int32>, within seconds: Int = 10) async -> Int32? {
        await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await exits.first { _ in true } }
            group.addTask {
                try? await Task.sleep(for: .seconds(seconds))  // a timeout guard, not synchronisation
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if first == nil { process.terminate() }
            return first
        }
    }

    @Test func printsItsOriginServesAndExitsAtEndOfStdin() async throws {
        let (process, input, started, exits) = try await launch([
            "--client-id", "cid", "--client-secret", "s3cret", "--refresh-grace", "60",
        ])
        #expect(started.origin == "http://127.0.0.1:\(started.port)")
        #expect(started.clientID == "cid")
        #expect(started.clientSecret == "s3cret")
        let port = started.port
        let response = try await blocking { () -> RawResponse? in
            let connection = try RawConnection(port: port)
            try connection.send(
                requestText(
                    "POST", "/oauth2/token", headers: [formType],
                    body: "grant_type=client_credentials&client_id=cid&client_secret=s3cret"))
            return try connection.readResponse()
        }
        #expect(response?.status == 200)
        try input.fileHandleForWriting.close()
        #expect(await exitStatus(process, exits) == 0)
    }

    @Test func exitsOnSIGTERM() async throws {
        let (process, _, _, exits) = try await launch(["--quiet"])
        process.terminate()
        #expect(await exitStatus(process, exits) == 0)
    }
}
