import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL server for tests: `initdb` and `pg_ctl` in a fresh private folder (its Unix socket
/// there too), on a free loopback port, fsync on. As root the server runs as the `postgres` user Debian's package
/// creates (`initdb` refuses root); otherwise as the current user. `deinit` stops it (`-m immediate`) and removes
/// the folder (after a `pg_dumpall` into the run's evidence, `TestEvidence`, when it collects some); a watchdog
/// process does the same if the test process dies without running `deinit`.
///
/// `shared` serves every test of a process (each takes a fresh database with `createDatabase`); a test that
/// restarts or stops the server starts its own cluster.
package final class PostgresCluster: Sendable {
    package let port: Int
    /// The cluster's folder: the data directory, the socket and the server log are inside.
    package let path: String
    private let binaries: String
    private let asServerUser: Bool
    private let serverOptions: String
    private let folder: TemporaryFolder
    private let watchdog: pid_t
    /// The write end of the watchdog's pipe: closing it (or this process ending) lets the watchdog clean up.
    private let watchdogPipe: Int32
    private let commandCounter = Atomic<Int>(0)

    /// The user that owns the server's files and processes when this process runs as root.
    private static let serverUser = "postgres"

    /// `listenAddresses` are the addresses the server listens on (loopback by default); for any other address the
    /// server also trusts clients on the networks its interfaces are on (`samenet`), such as simulated hosts.
    /// Throws a clear error if the server binaries are missing.
    package init(listenAddresses: [String] = ["127.0.0.1"]) throws {
        binaries = try Self.findBinaries()
        asServerUser = geteuid() == 0
        folder = try TemporaryFolder("postgres-cluster")
        path = folder.path
        if asServerUser { try Self.letServerUserReach(folder.path) }
        let data = folder.file("data")
        let log = folder.file("server.log")
        try Self.run(
            [binaries + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-instructions", "-E", "UTF8"],
            asServerUser: asServerUser, output: folder.file("initdb.out"))
        if listenAddresses.contains(where: { !["127.0.0.1", "localhost", "::1"].contains($0) }) {
            let hba = try FileHandle(forWritingTo: URL(fileURLWithPath: data + "/pg_hba.conf"))
            try hba.seekToEnd()
            try hba.write(contentsOf: Data("host all all samenet trust\n".utf8))
            try hba.close()
        }
        var started: (port: Int, options: String)?
        var lastError: Error?
        for _ in 0..<5 where started == nil {
            let port = try Self.freePort()
            let options =
                "-k \(path) -p \(port) -c listen_addresses=\(listenAddresses.joined(separator: ",")) -c fsync=on "
                + "-c max_connections=400 -c shared_buffers=32MB"
            do {
                try Self.run(
                    [binaries + "/pg_ctl", "-D", data, "-l", log, "-w", "-t", "120", "-o", options, "start"],
                    asServerUser: asServerUser, output: folder.file("pg_ctl.out"))
                started = (port, options)
            } catch {
                lastError = error  // most likely another process took the port meanwhile: try another one
            }
        }
        guard let started else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.suffix(2000) ?? ""
            throw ClusterError("could not start PostgreSQL (\(lastError.map { "\($0)" } ?? "")); server log: \(tail)")
        }
        port = started.port
        serverOptions = started.options
        (watchdog, watchdogPipe) = try Self.startWatchdog(
            binaries: binaries, data: data, folder: path, asServerUser: asServerUser)
        if let started = TestEvidence.postgresFile(cluster: path, suffix: "started") {
            _ = FileManager.default.createFile(atPath: started, contents: nil)
        }
    }

    deinit {
        keepDump()
        try? Self.run(
            [binaries + "/pg_ctl", "-D", folder.file("data"), "-m", "immediate", "-w", "stop"],
            asServerUser: asServerUser, output: folder.file("stop.out"))
        close(watchdogPipe)
        _ = Self.waitForExit(watchdog)
    }

    /// Every database of the cluster, dumped into the run's evidence (`TestEvidence`) for the scan of what the
    /// tests leave; a server a test left stopped is started for it. A dump that fails leaves its reason instead.
    private func keepDump() {
        guard let dump = TestEvidence.postgresFile(cluster: path, suffix: "sql") else { return }
        let arguments = [binaries + "/pg_dumpall", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-f", dump]
        let output = folder.file("pg_dumpall.out")
        do {
            try Self.run(arguments, asServerUser: false, output: output)
        } catch {
            do {
                try start()
                try Self.run(arguments, asServerUser: false, output: output)
            } catch {
                try? Data("\(error)".utf8).write(
                    to: URL(fileURLWithPath: TestEvidence.postgresFile(cluster: path, suffix: "failed")!))
            }
        }
    }

    /// Set once the shared cluster started; emptied at exit, which stops it.
    private static let sharedCluster = Mutex<PostgresCluster?>(nil)
    /// Starts the shared cluster once, on a thread of its own: the tests awaiting it meanwhile (every PostgreSQL
    /// test at the start of a run) suspend instead of holding the cooperative pool's few threads for `initdb`.
    private static let sharedStart = Task<Void, any Error> {
        let cluster = try await onOwnThread { try PostgresCluster() }
        sharedCluster.withLock { $0 = cluster }
        atexit { PostgresCluster.sharedCluster.withLock { $0 = nil } }
    }

    /// One cluster per test process, started on first use and stopped when the process exits.
    package static var shared: PostgresCluster {
        get async throws {
            try await sharedStart.value
            guard let cluster = sharedCluster.withLock({ $0 }) else { throw ClusterError("the process is exiting") }
            return cluster
        }
    }

    /// A libpq URI of `database` as the `postgres` superuser, over TCP to `host`.
    package func uri(database: String, host: String = "127.0.0.1") -> String {
        "postgresql://postgres@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
    }

    /// Creates a fresh, empty database named after `prefix`; returns its URI.
    package func createDatabase(_ prefix: String = "test") throws -> String {
        let safe = prefix.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "_" }
        let name = "\(safe.prefix(30))_\(getpid())_\(commandCounter.add(1, ordering: .relaxed).newValue)"
        _ = try psql("CREATE DATABASE \(name)")
        return uri(database: name)
    }

    /// Runs `sql` with `psql` in `database`; answers its output (unaligned, tuples only).
    @discardableResult
    package func psql(_ sql: String, database: String = "postgres") throws -> String {
        let output = folder.file("psql-\(commandCounter.add(1, ordering: .relaxed).newValue).out")
        defer { unlink(output) }
        try Self.run(
            [
                binaries + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", uri(database: database),
                "-c", sql,
            ], asServerUser: false, output: output)
        return try String(contentsOfFile: output, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `pg_dump` of `database` (schema and rows, plain SQL): what a logical backup of it holds.
    package func dump(database: String) throws -> [UInt8] {
        let output = folder.file("dump-\(commandCounter.add(1, ordering: .relaxed).newValue).sql")
        defer { unlink(output) }
        try Self.run([binaries + "/pg_dump", "-d", uri(database: database)], asServerUser: false, output: output)
        return Array(try Data(contentsOf: URL(fileURLWithPath: output)))
    }

    /// `pg_ctl restart -m fast`: every connection is closed, the server is back when this returns.
    package func restart() throws {
        try pgCtl(["-m", "fast", "-o", serverOptions, "restart"])
    }

    package func stop() throws { try pgCtl(["-m", "fast", "stop"]) }

    package func start() throws { try pgCtl(["-o", serverOptions, "start"]) }

    /// Kills (`pg_terminate_backend`) every connection whose `application_name` is the agent's; answers how many.
    package func terminateAgentConnections() throws -> Int {
        let killed = try psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                + "WHERE application_name = 'smartcar-auth-agent'")
        return Int(killed) ?? 0
    }

    /// A PgBouncer in front of this server with `poolMode` (`session`, `transaction`), on a free loopback port;
    /// it stops when the value goes away. Throws if `pgbouncer` is not installed.
    package func pgBouncer(poolMode: String) throws -> PgBouncer {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/pgbouncer") else {
            throw ClusterError("pgbouncer is not installed (/usr/sbin/pgbouncer): install the package `pgbouncer`")
        }
        let port = try Self.freePort()
        let name = "pgbouncer-\(commandCounter.add(1, ordering: .relaxed).newValue)"
        let configuration = folder.file("\(name).ini")
        let settings = """
            [databases]
            * = host=127.0.0.1 port=\(self.port) user=postgres
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = any
            pool_mode = \(poolMode)
            logfile = \(folder.file("\(name).log"))
            ignore_startup_parameters = extra_float_digits,options

            """
        guard FileManager.default.createFile(atPath: configuration, contents: Data(settings.utf8)) else {
            throw ClusterError("could not write \(configuration)")
        }
        let pid = try Self.spawn(
            ["/usr/sbin/pgbouncer", configuration], asServerUser: asServerUser, input: nil,
            output: folder.file("\(name).out"))
        return PgBouncer(port: port, pid: pid)
    }

    /// A running PgBouncer (see `pgBouncer(poolMode:)`).
    package final class PgBouncer: Sendable {
        package let port: Int
        private let pid: pid_t

        fileprivate init(port: Int, pid: pid_t) {
            self.port = port
            self.pid = pid
        }

        /// A libpq URI of `database` through this PgBouncer.
        package func uri(database: String) -> String { "postgresql://postgres@127.0.0.1:\(port)/\(database)" }

        deinit {
            kill(pid, SIGTERM)  // the `runuser` parent passes it on to pgbouncer and waits for it
            _ = PostgresCluster.waitForExit(pid)
        }
    }

    private func pgCtl(_ arguments: [String]) throws {
        try Self.run(
            [binaries + "/pg_ctl", "-D", folder.file("data"), "-l", folder.file("server.log"), "-w", "-t", "120"]
                + arguments, asServerUser: asServerUser,
            output: folder.file("pg_ctl-\(commandCounter.add(1, ordering: .relaxed).newValue).out"))
    }

    /// The newest installed server's `bin` folder (Debian: /usr/lib/postgresql/<version>/bin).
    private static func findBinaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted()
        for version in versions.reversed()
        where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw ClusterError(
            "the PostgreSQL server binaries (initdb, pg_ctl) are not installed in \(root)/*/bin: install the package `postgresql`"
        )
    }

    /// The server user must traverse every folder down to the cluster's: gives the cluster folder to it, and
    /// adds only search permission (o+x, never read) to the folders of the temporary folder that lack it.
    private static func letServerUserReach(_ path: String) throws {
        guard let user = getpwnam(serverUser) else {
            throw ClusterError("running as root, but there is no `\(serverUser)` user to run the PostgreSQL server")
        }
        guard chown(path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
            throw ClusterError("could not give \(path) to \(serverUser): \(String(cString: strerror(errno)))")
        }
        let temporary = FileManager.default.temporaryDirectory.standardizedFileURL.path
        var folder = URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL.path
        while folder.hasPrefix(temporary) {
            var status = stat()
            if stat(folder, &status) == 0, status.st_mode & S_IXOTH == 0 {
                chmod(folder, (status.st_mode & 0o7777) | S_IXOTH)
            }
            guard folder != temporary, folder != "/" else { break }
            folder = URL(fileURLWithPath: folder).deletingLastPathComponent().path
        }
    }

    /// A port nobody listens on right now (bind port 0, read it, close).
    private static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw ClusterError("socket: \(String(cString: strerror(errno)))") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(socket, generic, length) == 0 && getsockname(socket, generic, &length) == 0
            }
        }
        guard bound else { throw ClusterError("could not find a free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs a command to its end, its output in the file `output`; throws with that output if it fails.
    private static func run(_ arguments: [String], asServerUser: Bool, output: String) throws {
        let pid = try spawn(arguments, asServerUser: asServerUser, input: nil, output: output)
        let status = waitForExit(pid)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            let name = URL(fileURLWithPath: arguments[0]).lastPathComponent
            throw ClusterError("\(name) failed (status \(status)): \(text.suffix(2000))")
        }
    }

    /// Spawns `arguments` (through `runuser` as the server user), stdin from `input` (else /dev/null), stdout and
    /// stderr to `output` (else /dev/null), holding no other descriptor of this process.
    private static func spawn(
        _ arguments: [String], asServerUser: Bool, input: Int32?, output: String?
    ) throws -> pid_t {
        let command = asServerUser ? ["/usr/sbin/runuser", "-u", serverUser, "--"] + arguments : arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in descriptors.compactMap({ Int32($0) }) where fd > 2 && fd != input {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw ClusterError("could not start \(command[0]): \(String(cString: strerror(spawned)))")
        }
        return pid
    }

    /// Waits for `pid` to end; answers its exit status (or 128 + the signal that ended it).
    fileprivate static func waitForExit(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(pid, &status, 0) } while result < 0 && errno == EINTR
        guard result == pid else { return -1 }
        let signal = status & 0x7f  // WIFEXITED / WEXITSTATUS are macros Swift does not import
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// A shell that waits until the pipe from this process closes (this process ended, or `deinit`), then stops
    /// the server and removes the folder: a test process that crashes leaves no server behind.
    private static func startWatchdog(
        binaries: String, data: String, folder: String, asServerUser: Bool
    ) throws -> (pid: pid_t, pipe: Int32) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw ClusterError("pipe: \(String(cString: strerror(errno)))") }
        defer { close(ends[0]) }
        // Only the watchdog may hold the write end's peer: another child holding it would keep the watchdog waiting.
        _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        let runAs = asServerUser ? "/usr/sbin/runuser -u \(serverUser) -- " : ""
        let script = "read _; \(runAs)'\(binaries)/pg_ctl' -D '\(data)' -m immediate stop; rm -rf '\(folder)'"
        do {
            return (try spawn(["/bin/sh", "-c", script], asServerUser: false, input: ends[0], output: nil), ends[1])
        } catch {
            close(ends[1])
            throw error
        }
    }
}

/// Why a `PostgresCluster` could not do what it was asked.
package struct ClusterError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
