import AgentSupport
import FakeSmartcar
import Foundation
import WireFormats

// fake-smartcar: the FakeSmartcar server as a process, for tests written in other languages.
//
// Prints one JSON line to stdout once listening:
//   {"origin":"http://127.0.0.1:PORT","clientID":"...","clientSecret":"..."}
// logs one line per request to stderr, and runs until SIGTERM/SIGINT or end of stdin (when stdin is a
// pipe, socket or terminal), so a parent that dies takes it down. Control it over `/_fake/...`.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

let usage = """
    usage: fake-smartcar [--port N] [--client-id ID] [--client-secret SECRET] [--latency-ms MS]
                         [--refresh-grace SECONDS] [--access-token-lifetime SECONDS]
                         [--default-redirect-uri URI] [--basic-challenge] [--quiet]

    """

func fail(_ message: String) -> Never {
    FileDescriptor.writeAll(STDERR_FILENO, "fake-smartcar: \(message)\n\(usage)")
    exit(2)
}

func parseOptions(_ arguments: [String]) -> FakeSmartcar.Options {
    var options = FakeSmartcar.Options()
    var quiet = false
    var remaining = arguments[...]
    func value(_ flag: String) -> String {
        guard let value = remaining.popFirst() else { fail("\(flag) needs a value") }
        return value
    }
    func number<N: LosslessStringConvertible>(_ flag: String, _: N.Type) -> N {
        let text = value(flag)
        guard let number = N(text) else { fail("\(flag): not a number: \(text)") }
        return number
    }
    while let flag = remaining.popFirst() {
        switch flag {
        case "--port": options.port = number(flag, UInt16.self)
        case "--client-id": options.clientID = value(flag)
        case "--client-secret": options.clientSecret = value(flag)
        case "--latency-ms": options.latency = .milliseconds(number(flag, Int.self))
        case "--refresh-grace": options.refreshReuse = .grace(number(flag, Double.self))
        case "--access-token-lifetime": options.accessTokenLifetime = number(flag, Int.self)
        case "--default-redirect-uri": options.defaultRedirectURI = value(flag)
        case "--basic-challenge": options.basicChallengeOnInvalidClient = true
        case "--quiet": quiet = true
        case "-h", "--help":
            FileDescriptor.writeAll(STDOUT_FILENO, usage)
            exit(0)
        default: fail("unknown argument \(flag)")
        }
    }
    if !quiet {
        options.log = { line in FileDescriptor.writeAll(STDERR_FILENO, "fake-smartcar: \(line)\n") }
    }
    return options
}

/// Whether end of stdin means "the parent is gone" (not /dev/null or a file, which end at once).
func stdinSignalsParentLifetime() -> Bool {
    var info = stat()
    guard fstat(STDIN_FILENO, &info) == 0 else { return false }
    let type = info.st_mode & S_IFMT
    return type == S_IFIFO || type == S_IFSOCK || isatty(STDIN_FILENO) == 1
}

func run() -> Never {
    signal(SIGPIPE, SIG_IGN)
    // Block SIGTERM/SIGINT before any thread exists (threads inherit the mask); the main thread takes
    // them with sigwait below, so a signal sent at any moment after start is handled, never lost.
    var stopSignals = sigset_t()
    sigemptyset(&stopSignals)
    sigaddset(&stopSignals, SIGTERM)
    sigaddset(&stopSignals, SIGINT)
    pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

    let options = parseOptions(Array(CommandLine.arguments.dropFirst()))
    let fake: FakeSmartcar
    do {
        fake = try FakeSmartcar(options: options)
    } catch {
        fail("cannot start: \(error)")
    }
    let shutdown: @Sendable (String) -> Never = { reason in
        FileDescriptor.writeAll(STDERR_FILENO, "fake-smartcar: stopping (\(reason))\n")
        fake.stop()
        _exit(0)
    }
    if stdinSignalsParentLifetime() {
        let watcher = Thread { @Sendable in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
                if count > 0 || (count < 0 && errno == EINTR) { continue }
                shutdown("end of stdin")
            }
        }
        watcher.name = "fake-smartcar stdin"
        watcher.start()
    }
    let ready: JSONValue = [
        "origin": .string(fake.origin.absoluteString), "clientID": .string(options.clientID),
        "clientSecret": .string(options.clientSecret),
    ]
    FileDescriptor.writeAll(STDOUT_FILENO, ready.compactText + "\n")
    var received: Int32 = 0
    while sigwait(&stopSignals, &received) != 0 {}
    shutdown(received == SIGTERM ? "SIGTERM" : "SIGINT")
}

run()
