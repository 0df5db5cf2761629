import AgentSupport
import AuthAgent
import Dispatch
import FakeSmartcar
import Foundation
import JSONRPC
import Sealing
import Synchronization
import TokenStore
import TranscriptRecording

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Before anything opens a file: a closed 0, 1 or 2 gets /dev/null, so no later file takes its number.
ProcessState.fillClosedStandardDescriptors()
ProcessState.disableCoreDumps()
// Signals: see `StopSignals`. The logger is made once the options are read.
let startupLogger = Mutex<Logger?>(nil)
StopSignals.start(logger: { startupLogger.withLock { $0 } })
// The protocol owns the real stdout: keep it on a private descriptor and point fd 1 at stderr, so a stray
// print can never corrupt the message stream. A vanished client then gives EPIPE instead of killing us.
CrashSignals.install()
let protocolOutput = dup(STDOUT_FILENO)
dup2(STDERR_FILENO, STDOUT_FILENO)

/// The environment, read straight from `environ`: `ProcessInfo.processInfo.environment` costs about a
/// millisecond of start-up.
func processEnvironment() -> [String: String] {
    var variables: [String: String] = [:]
    var entry = environ
    while let pointer = entry.pointee {
        let text = String(cString: pointer)
        if let equals = text.firstIndex(of: "=") {
            variables[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        entry += 1
    }
    return variables
}

let options: CommandLineOptions
do {
    options = try CommandLineOptions(parsing: Array(CommandLine.arguments.dropFirst()))
} catch {
    FileDescriptor.writeAll(STDERR_FILENO, "smartcar-auth-agent: \(Logger.oneLine("\(error)"))\n")
    _exit(2)
}
switch options.action {
case .help:
    FileDescriptor.writeAll(protocolOutput, HelpText.text + "\n")
    _exit(0)
case .version:
    FileDescriptor.writeAll(protocolOutput, "smartcar-auth-agent \(AgentVersion.current)\n")
    _exit(0)
case .run:
    break
}

// See `SealingWarmUp`: the thread ends once OpenSSL is ready; nothing waits for it.
Thread { SealingWarmUp.run() }.start()
let logger = Logger(level: options.logLevel)
startupLogger.withLock { $0 = logger }
var environment = processEnvironment()
var runOptions = options
/// Kept alive for the whole process in sandbox mode.
var sandbox: FakeSmartcar?
if options.sandbox {
    do {
        let fake = try FakeSmartcar()
        sandbox = fake
        environment.merge(Sandbox.environment(for: fake)) { _, sandboxValue in sandboxValue }
        runOptions.store = Sandbox.store(options: options, environment: environment)
    } catch {
        logger.error("sandbox: could not start the fake Smartcar: \(error)")
        _exit(2)
    }
}

var setup: Agent.Setup
do {
    setup = try AgentLauncher.setup(options: runOptions, environment: environment, logger: logger)
} catch {
    logger.error("\(error)")
    _exit(2)
}

// --record: the session's messages and upstream exchanges go to a transcript, secrets replaced.
let recorder: SessionRecorder?
if let path = options.record {
    do {
        let storePath = setup.storeDescription == "memory" ? nil : setup.storeDescription
        let made = try SessionRecorder(
            path: path, configuration: setup.configuration, storePath: storePath,
            arguments: options.replayArguments, agentVersion: AgentVersion.current)
        recorder = made
        setup.transport = RecordingTransport(setup.transport, recorder: made)
        logger.notice("recording this session to \(path) (secrets replaced by placeholders)")
    } catch {
        logger.error("\(error)")
        _exit(2)
    }
} else {
    recorder = nil
}

// The sandbox's fake accepts the grants of a durable store, which earlier runs' fakes issued.
if let sandbox {
    let store = setup.store
    let adopted = Mutex<Result<Int, StoreError>>(.success(0))
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        let result: Result<Int, StoreError>
        do throws(StoreError) { result = .success(try await Sandbox.adoptGrants(of: store, into: sandbox)) } catch {
            result = .failure(error)
        }
        adopted.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    logger.notice(
        "sandbox: a fake Smartcar is serving at \(sandbox.origin.absoluteString); nothing leaves this machine")
    switch adopted.withLock({ $0 }) {
    case .success(let count) where count > 0:
        logger.info("sandbox: the fake Smartcar accepts the \(count) grants of the store")
    case .success: break
    case .failure(let error):
        logger.error("sandbox: could not read the store's grants: \(error)")
        _exit(2)
    }
}

let agent = Agent(setup)
let connection = Connection(
    inputFD: STDIN_FILENO, outputFD: protocolOutput, maxMessageBytes: options.maxMessageBytes, logger: logger,
    observer: recorder)

// SIGTERM, SIGINT and SIGHUP: stop reading, answer what is in flight, exit; a second one forces the exit.
StopSignals.handle(for: connection)

Task.detached {
    let maintenance = Task { await agent.runMaintenance() }
    await connection.run(handler: agent)
    maintenance.cancel()
    // Tokens Smartcar rotated but the store refused are written before the process ends, for up to 30 s;
    // keys still unsaved then are logged, and the exit code says so.
    let atRisk = await agent.drainUnsaved(within: 30)
    let exitCode = atRisk.isEmpty ? agent.exitCode ?? 0 : 3
    recorder?.finish(exitCode: exitCode)
    // Exit without running atexit handlers: OpenSSL's and libcurl's cleanup race at exit (see SWIFT-LINUX-NOTES).
    _exit(exitCode)
}
// Nothing runs on the main queue, so the main thread just sleeps (`dispatchMain()` would make it libdispatch's
// signal thread, which valgrind cannot run: profiling the agent needs this).
while true { pause() }
