import CStrataSystem
import StrataStore

/// How a node serves clients. Storage settings live in `StoreConfiguration`.
public struct ServerConfiguration: Sendable {
    /// Address the client (RESP) and HTTP ports bind to.
    public var bind: String
    /// The RESP port clients connect to (0 picks a free port).
    public var port: Int
    /// The HTTP port for /metrics, /health and /ready (0 picks a free port).
    public var httpPort: Int
    /// Password clients must give with AUTH or HELLO; nil: no authentication.
    public var requirePass: String?
    /// Largest value (and argument) accepted, in bytes.
    public var maxValueSize: Int
    /// Most clients connected at once; more are refused with an error.
    public var maxClients: Int
    /// Event loop threads for client connections.
    public var ioThreads: Int
    /// Threads for commands that may read the disk tier (memory misses).
    public var diskThreads: Int
    /// Bytes of replies a client may leave unread before the node stops reading its requests.
    public var outputHighWaterMark: Int
    /// The data directory (reported by INFO and CONFIG GET).
    public var dataDirectory: String

    public init(
        bind: String = "127.0.0.1",
        port: Int = 7379,
        httpPort: Int = 9379,
        requirePass: String? = nil,
        maxValueSize: Int = 512 << 20,
        maxClients: Int = 10_000,
        ioThreads: Int = System.coreCountForServer,
        diskThreads: Int = 4,
        outputHighWaterMark: Int = 4 << 20,
        dataDirectory: String = ""
    ) {
        self.bind = bind
        self.port = port
        self.httpPort = httpPort
        self.requirePass = requirePass
        self.maxValueSize = maxValueSize
        self.maxClients = maxClients
        self.ioThreads = ioThreads
        self.diskThreads = diskThreads
        self.outputHighWaterMark = outputHighWaterMark
        self.dataDirectory = dataDirectory
    }
}

import NIOCore

extension System {
    /// Event loop threads by default: one per core this process may run on. NIO's count honours
    /// cgroup quotas and cpusets (containers); the affinity mask adds `taskset` and `numactl`,
    /// which it does not see: a node pinned to one core of many ran as many loops as the machine
    /// had cores, and they took turns on the one core in whole scheduler ticks.
    public static var coreCountForServer: Int { max(1, min(System.coreCount, affinityCoreCount ?? .max)) }

    /// The CPUs in this process' affinity mask (`sched_getaffinity`), or nil where unknown.
    public static var affinityCoreCount: Int? {
        let count = Int(strata_affinity_cpu_count())
        return count > 0 ? count : nil
    }
}

/// The version this build reports (INFO, HELLO, `strata --version`).
public enum StrataVersion {
    public static let current = "0.1.0"
    /// The Redis version whose commands and replies Strata follows, for clients that gate features on it.
    public static let redisCompatible = "7.0.15"
}
