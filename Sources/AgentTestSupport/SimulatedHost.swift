import FakeSmartcar
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Another machine for tests, on this one: a network namespace joined to this machine by a veth pair
/// (10.231.N.1 on this side, 10.231.N.2 inside), in which processes start with a host name of their own (a UTS
/// namespace), so an agent there cannot tell other hosts' processes apart by pid. Processes inside reach this
/// machine at `hostSideAddress` (PostgreSQL, listening there too) and the fake Smartcar at 127.0.0.1
/// (`expose(_:)`), since the agent sends credentials over plain http only to loopback hosts.
///
/// Needs root (`isAvailable`). `deinit` removes the namespace; namespaces a killed test process left behind
/// (named after its pid) are removed by the next process that makes one.
package final class SimulatedHost: Sendable {
    /// The host name processes started inside see (`gethostname`).
    package let hostName: String
    /// The network namespace (`ip netns`), `smartcar-host-<pid>-<N>`.
    package let namespace: String
    /// This machine's address on the link: where processes inside reach its servers.
    package let hostSideAddress: String
    /// The address of the inside end of the link.
    package let insideAddress: String

    private static let namePrefix = "smartcar-host-"

    /// Whether simulated hosts work here: root, `ip` and `unshare` present, and one could be made and removed.
    package static let isAvailable: Bool = {
        guard geteuid() == 0, IPCommand.path != nil, FileManager.default.isExecutableFile(atPath: unsharePath)
        else { return false }
        return (try? SimulatedHost(hostName: "probe")) != nil
    }()

    private static let unsharePath = "/usr/bin/unshare"

    /// Makes the namespace and its link, on the first free 10.231.N.0/30 (N in 1...254: the host-side
    /// interface `schN` is created atomically, so concurrent test processes never share a link).
    package init(hostName: String) throws {
        Self.removeLeftovers()
        self.hostName = hostName
        let made = try Self.makeLink()
        namespace = made.namespace
        hostSideAddress = "10.231.\(made.n).1"
        insideAddress = "10.231.\(made.n).2"
        do {
            try IPCommand.run(["addr", "add", "\(hostSideAddress)/30", "dev", "sch\(made.n)"])
            try IPCommand.run(["link", "set", "sch\(made.n)", "up"])
            try IPCommand.run(["-n", namespace, "addr", "add", "\(insideAddress)/30", "dev", "eth0"])
            try IPCommand.run(["-n", namespace, "link", "set", "eth0", "up"])
            try IPCommand.run(["-n", namespace, "link", "set", "lo", "up"])
        } catch {
            try? IPCommand.run(["netns", "del", namespace])
            throw error
        }
    }

    /// Removing the namespace ends the link with it (once no process runs inside any more).
    deinit { try? IPCommand.run(["netns", "del", namespace]) }

    /// The command line that runs `argv` inside: in the namespace, with the host name set, the same process
    /// throughout (`ip netns exec`, `unshare` and `sh` each `exec` the next), so its pid is the caller's to
    /// signal (SIGSTOP, SIGKILL).
    package func commandLine(_ argv: [String]) -> [String] {
        [
            IPCommand.path ?? "ip", "netns", "exec", namespace, Self.unsharePath, "--uts", "/bin/sh", "-c",
            "hostname \"$0\" && exec \"$@\"", hostName,
        ] + argv
    }

    /// Starts `binary` (the agent by default) inside, as `AgentProcess` starts it here.
    package func start(
        binary: String = BinaryLocator.agent, arguments: [String] = [], environment: [String: String] = [:],
        stderrPath: String? = nil
    ) throws -> AgentProcess {
        let argv = commandLine([binary] + arguments)
        return try AgentProcess(
            binary: argv[0], arguments: Array(argv.dropFirst()), environment: environment, stderrPath: stderrPath)
    }

    /// Makes `fake` reachable inside at its `origin` (127.0.0.1:port): the fake listens there too, from a thread
    /// that joins the namespace for just that (a namespace is per thread) and then ends.
    package func expose(_ fake: FakeSmartcar) throws {
        let path = "/run/netns/\(namespace)"
        try NamespaceThread.run(inNetworkNamespace: path) { try fake.listenInCurrentNamespace() }
    }

    /// Makes a namespace and a veth pair into it on the first free N; the namespace's name and N.
    private static func makeLink() throws(IPCommandError) -> (namespace: String, n: Int) {
        for n in 1...254 {
            // Only a name taken (by another host of this process, or another process's link) means "try the
            // next N"; anything else is a real failure.
            let namespace = "\(namePrefix)\(getpid())-\(n)"
            do {
                try IPCommand.run(["netns", "add", namespace])
            } catch {
                if error.nameTaken { continue }
                throw error
            }
            do {
                try IPCommand.run([
                    "link", "add", "sch\(n)", "type", "veth", "peer", "name", "eth0", "netns", namespace,
                ])
                return (namespace, n)
            } catch {
                try? IPCommand.run(["netns", "del", namespace])
                if !error.nameTaken { throw error }
            }
        }
        throw IPCommandError("no free 10.231.N.0/30 link for a simulated host")
    }

    /// Removes the namespaces of test processes that are gone (`smartcar-host-<pid>-<N>`).
    private static func removeLeftovers() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        for name in names where name.hasPrefix(namePrefix) {
            let pid = name.dropFirst(namePrefix.count).split(separator: "-").first.flatMap { pid_t($0) }
            guard let pid, pid > 0, kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? IPCommand.run(["netns", "del", name])
        }
    }
}

/// Why a simulated host could not be made or used.
package struct SimulatedHostError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
