import AgentTestSupport
import Foundation
import TranscriptReplay

// replay-transcripts: replays transcripts against an agent binary and says which pass.
// Usage: replay-transcripts --agent PATH [--postgres] [--timeout SECONDS] [--verbose] FILE_OR_FOLDER...

let usage = """
    Usage: replay-transcripts --agent PATH [--postgres] [--timeout SECONDS] [--verbose] FILE_OR_FOLDER...
    Replays each .transcript file (a folder: every .transcript in it) against the agent at PATH,
    with a scripted fake Smartcar playing the recorded upstream side. Prints PASS or FAIL with a diff per
    file, then "N passed, M failed"; exits 1 if any failed. --verbose also prints every message the agent
    sent and every request the upstream received. --postgres makes {{store}} a fresh database (one per
    file) of a throwaway PostgreSQL cluster this run starts and removes (initdb and pg_ctl must be
    installed), instead of a SQLite file. Format: Protocol/transcripts/README.md.
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("replay-transcripts: \(message)\n\n\(usage)\n".utf8))
    exit(2)
}

var agent: String?
var timeout: Double?
var verbose = false
var postgres = false
var inputs: [String] = []
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--agent":
        guard let path = arguments.popFirst() else { fail("--agent needs a path") }
        agent = path
    case "--timeout":
        guard let text = arguments.popFirst(), let seconds = Double(text), seconds > 0 else {
            fail("--timeout needs a number of seconds")
        }
        timeout = seconds
    case "--verbose": verbose = true
    case "--postgres": postgres = true
    case "-h", "--help":
        print(usage)
        exit(0)
    default:
        if argument.hasPrefix("-") { fail("unknown option \(argument)") }
        inputs.append(argument)
    }
}
guard let agent else { fail("--agent PATH is required") }
guard FileManager.default.isExecutableFile(atPath: agent) else { fail("\(agent) is not an executable") }
guard !inputs.isEmpty else { fail("name at least one transcript or folder") }

var files: [String] = []
for input in inputs {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: input, isDirectory: &isFolder) else { fail("\(input) does not exist") }
    if isFolder.boolValue {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: input)) ?? []
        files += names.filter { $0.hasSuffix(".transcript") }.sorted().map {
            (input as NSString).appendingPathComponent($0)
        }
    } else {
        files.append(input)
    }
}

var options = ReplayOptions(agent: agent)
if let timeout { options.timeout = timeout }
// Kept until the end of the run: the cluster stops and its folder goes when the last reference does.
var cluster: PostgresCluster?
if postgres {
    do {
        cluster = try PostgresCluster()
    } catch {
        fail("--postgres: \(error)")
    }
    options.store = .postgres(cluster!)
}
var passed = 0, failed = 0
for file in files {
    let result = await Replay.run(path: file, options: options)
    print(result.report)
    if verbose { print(result.log.map { "    " + $0 }.joined(separator: "\n")) }
    if result.passed { passed += 1 } else { failed += 1 }
}
print("\(passed) passed, \(failed) failed")
cluster = nil
exit(failed == 0 ? 0 : 1)
