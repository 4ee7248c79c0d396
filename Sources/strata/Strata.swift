import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StrataCluster
import StrataServer
import StrataStore

@main
struct Strata: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "A persistent, tiered cache that speaks the Redis protocol.",
        discussion: """
            Every option of `serve` can also be set by an environment variable STRATA_<OPTION>, \
            for example STRATA_DATA_DIR or STRATA_FSYNC; a flag on the command line wins.
            """,
        version: StrataVersion.current,
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self)

    /// Parses with environment defaults, and reports a bad flag in one line.
    static func main() async {
        let (arguments, fromEnvironment) = EnvironmentDefaults.apply(to: Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if let code = (error as? ExitCode) {
                Foundation.exit(code.rawValue)
            }
            let exitCode = Self.exitCode(for: error)
            if exitCode == .success {
                exit(withError: error)  // --help and --version
            }
            let message = error is StartupError ? "\(error)" : Self.message(for: error)
            let attributed = EnvironmentDefaults.naming(fromEnvironment, in: message)
            FileHandle.standardError.write(Data("strata: \(attributed)\n".utf8))
            Foundation.exit(exitCode == .success ? 1 : exitCode.rawValue)
        }
    }
}

/// A failure to start, reported as one line.
struct StartupError: Error, CustomStringConvertible {
    let description: String
}

/// Fills options not given on the command line from STRATA_* environment variables.
enum EnvironmentDefaults {
    static let options = [
        "data-dir", "bind", "port", "http-port", "memory", "disk", "compress-threshold", "fsync", "requirepass",
        "max-value-size", "max-clients", "log-level", "snapshot-interval", "io-threads", "disk-threads",
        "node-id", "peers", "join", "advertise", "replicas", "write-quorum", "vnodes",
        "hash-max-listpack-entries", "hash-max-listpack-value", "set-max-intset-entries", "set-max-listpack-entries",
        "set-max-listpack-value", "zset-max-listpack-entries", "zset-max-listpack-value", "list-max-listpack-size",
        "list-compress-depth",
    ]

    /// The arguments with the variables' values added, and which options came from which variable.
    static func apply(to arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment)
        -> (arguments: [String], variables: [String: String])
    {
        guard !arguments.contains(where: { $0 == "--help" || $0 == "-h" || $0 == "--version" }) else { return (arguments, [:]) }
        var result = arguments
        var variables: [String: String] = [:]
        for option in options {
            let variable = "STRATA_" + option.uppercased().replacingOccurrences(of: "-", with: "_")
            guard let value = environment[variable], !value.isEmpty else { continue }
            let given = arguments.contains { $0 == "--\(option)" || $0.hasPrefix("--\(option)=") }
            if !given {
                result += ["--\(option)", value]
                variables[option] = variable
            }
        }
        return (result, variables)
    }

    /// `message` with each option that came from the environment named by its variable (the
    /// user never typed `--fsync` when STRATA_FSYNC=sometimes is wrong).
    static func naming(_ variables: [String: String], in message: String) -> String {
        var out = message
        for (option, variable) in variables {
            // The option alone, or as ArgumentParser quotes it ('--fsync <fsync>'), but not a
            // longer option that ends with it (--port in --http-port).
            let pattern = "(?<![A-Za-z0-9-])--\(option)(?: <\(option)>)?(?![A-Za-z0-9-])"
            guard let regex = try? NSRegularExpression(pattern: pattern) else { continue }
            out = regex.stringByReplacingMatches(
                in: out, range: NSRange(out.startIndex..., in: out), withTemplate: NSRegularExpression.escapedTemplate(for: variable))
        }
        return out
    }
}

extension FsyncMode: ExpressibleByArgument {}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Strata node.",
        discussion: "Clients connect with any Redis client; metrics are served at http://BIND:HTTP-PORT/metrics.")

    @Option(name: .customLong("data-dir"), help: "Directory for the node's data (created if missing). Required.")
    var dataDir: String

    @Option(help: "Address to listen on, for clients and HTTP.")
    var bind = "127.0.0.1"

    @Option(help: "Client (RESP) port.")
    var port = 7379

    @Option(name: .customLong("http-port"), help: "HTTP port for /metrics, /health and /ready.")
    var httpPort = 9379

    @Option(help: "Memory tier budget: keys, values and overhead (bytes, or 512MiB, 4GiB...; at least 1MiB).")
    var memory = "256MiB"

    @Option(help: "Disk tier budget; the oldest entries are evicted as it fills (bytes, or 512MiB, 4GiB...).")
    var disk = "4GiB"

    @Option(name: .customLong("compress-threshold"), help: "Values at least this large are stored zlib-compressed on disk when that saves space.")
    var compressThreshold = "1KiB"

    @Option(help: "When writes reach stable storage: always (before the reply), everysec, or never (left to the OS).")
    var fsync: FsyncMode = .everysec

    @Option(help: "Password clients must give with AUTH (or HELLO ... AUTH). Default: none.")
    var requirepass: String?

    @Option(name: .customLong("max-value-size"), help: "Largest value or argument accepted.")
    var maxValueSize = "512MiB"

    @Option(name: .customLong("max-clients"), help: "Most client connections at once.")
    var maxClients = 10_000

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(name: .customLong("snapshot-interval"), help: "Seconds between snapshots of the hot keys for warm restarts (0: only at shutdown).")
    var snapshotInterval = 60.0

    @Option(
        name: .customLong("io-threads"),
        help: "Event loop threads for client connections (default: one per core the process may use: cgroup quota, cpuset and affinity mask).")
    var ioThreads: Int?

    @Option(name: .customLong("disk-threads"), help: "Threads for commands that may read the disk tier.")
    var diskThreads = 4

    @Option(name: .customLong("node-id"), help: "This node's name in the cluster (required with --peers or --join).")
    var nodeID: String?

    @Option(help: "Every node of the cluster, this one included: id=host:port,id=host:port (their client ports). None: a single node.")
    var peers: String?

    @Option(help: "A member of a running cluster (host:port) to ask to admit this node; its ranges then stream to it.")
    var join: String?

    @Option(help: "The address peers reach this node at (host:port). Default: its entry in --peers, else --bind:--port.")
    var advertise: String?

    @Option(help: "Owners (copies) of every key in a cluster.")
    var replicas = 2

    @Option(name: .customLong("write-quorum"), help: "Nodes that must have a write before it is acknowledged.")
    var writeQuorum = 1

    @Option(help: "Virtual nodes per node on the hash ring.")
    var vnodes = 128

    // Redis' encoding thresholds for collections, under Redis' names (CONFIG SET changes them live).
    @Option(name: [.customLong("hash-max-listpack-entries"), .customLong("hash-max-ziplist-entries")], parsing: .unconditional, help: "Fields a hash keeps as a listpack (default 512, as Redis 7).")
    var hashMaxListpackEntries: String?
    @Option(name: [.customLong("hash-max-listpack-value"), .customLong("hash-max-ziplist-value")], parsing: .unconditional, help: "Longest field or value a listpack hash holds.")
    var hashMaxListpackValue: String?
    @Option(name: .customLong("set-max-intset-entries"), parsing: .unconditional, help: "Members a set of integers keeps as an intset.")
    var setMaxIntsetEntries: String?
    @Option(name: .customLong("set-max-listpack-entries"), parsing: .unconditional, help: "Members a set keeps as a listpack.")
    var setMaxListpackEntries: String?
    @Option(name: .customLong("set-max-listpack-value"), parsing: .unconditional, help: "Longest member a listpack set holds.")
    var setMaxListpackValue: String?
    @Option(name: [.customLong("zset-max-listpack-entries"), .customLong("zset-max-ziplist-entries")], parsing: .unconditional, help: "Members a sorted set keeps as a listpack.")
    var zsetMaxListpackEntries: String?
    @Option(name: [.customLong("zset-max-listpack-value"), .customLong("zset-max-ziplist-value")], parsing: .unconditional, help: "Longest member a listpack sorted set holds.")
    var zsetMaxListpackValue: String?
    @Option(name: [.customLong("list-max-listpack-size"), .customLong("list-max-ziplist-size")], parsing: .unconditional, help: "A list node's size: entries if positive, -1..-5 for 4..64 KiB.")
    var listMaxListpackSize: String?
    @Option(name: .customLong("list-compress-depth"), parsing: .unconditional, help: "List nodes kept uncompressed at each end (0: none compressed).")
    var listCompressDepth: String?

    /// The Redis parameters given as flags, by their CONFIG names.
    var redisParameters: [(String, String?)] {
        [
            ("hash-max-listpack-entries", hashMaxListpackEntries), ("hash-max-listpack-value", hashMaxListpackValue),
            ("set-max-intset-entries", setMaxIntsetEntries), ("set-max-listpack-entries", setMaxListpackEntries),
            ("set-max-listpack-value", setMaxListpackValue), ("zset-max-listpack-entries", zsetMaxListpackEntries),
            ("zset-max-listpack-value", zsetMaxListpackValue), ("list-max-listpack-size", listMaxListpackSize),
            ("list-compress-depth", listCompressDepth),
        ]
    }

    func size(_ text: String, _ flag: String) throws -> Int {
        guard let bytes = parseByteSize(text) else {
            throw ValidationError("--\(flag): '\(text)' is not a size (use bytes, or a number with KiB, MiB, GiB or TiB)")
        }
        return bytes
    }

    /// The smallest memory tier accepted: below it a number was surely meant with a unit.
    static let minimumMemory = 1 << 20

    /// `--io-threads`, or one per core the process may use.
    var eventLoopThreads: Int { ioThreads ?? System.coreCountForServer }

    func validate() throws {
        let memoryBytes = try size(memory, "memory")
        guard memoryBytes >= Serve.minimumMemory else {
            throw ValidationError(
                "--memory: '\(memory)' is \(memoryBytes) bytes; the memory tier needs at least 1MiB (a plain number means bytes: write 64MiB, 4GiB...)")
        }
        _ = try size(disk, "disk")
        _ = try size(compressThreshold, "compress-threshold")
        guard try size(maxValueSize, "max-value-size") > 0 else { throw ValidationError("--max-value-size must be positive") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port must be 0 to 65535") }
        guard maxClients > 0 else { throw ValidationError("--max-clients must be positive") }
        guard eventLoopThreads > 0, diskThreads > 0 else { throw ValidationError("--io-threads and --disk-threads must be positive") }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level: '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        guard snapshotInterval >= 0 else { throw ValidationError("--snapshot-interval must not be negative") }
        if let peers {
            guard let parsed = ClusterConfiguration.parsePeers(peers) else {
                throw ValidationError("--peers: '\(peers)' is not a list of id=host:port")
            }
            guard nodeID != nil else { throw ValidationError("--node-id is required with --peers") }
            // The list names every node, this one included (or not: then it is added).
            let nodes = Set(parsed.map(\.id.name) + [nodeID ?? ""]).count
            guard (1...nodes).contains(replicas) else {
                throw ValidationError("--replicas must be between 1 and the number of nodes (\(nodes))")
            }
        }
        if let join {
            guard ClusterConfiguration.parseAddress(join) != nil else { throw ValidationError("--join: '\(join)' is not host:port") }
            guard nodeID != nil else { throw ValidationError("--node-id is required with --join") }
            guard port != 0 || advertise != nil else { throw ValidationError("--join needs a fixed --port (or --advertise)") }
        }
        if let advertise, ClusterConfiguration.parseAddress(advertise) == nil {
            throw ValidationError("--advertise: '\(advertise)' is not host:port")
        }
        if let nodeID, !Membership.isValidName(nodeID) {
            throw ValidationError("--node-id: '\(nodeID)' must be 1 to 64 characters without spaces")
        }
        guard replicas >= 1 else { throw ValidationError("--replicas must be at least 1") }
        guard (1...replicas).contains(writeQuorum) else { throw ValidationError("--write-quorum must be between 1 and --replicas") }
        guard vnodes >= 1 && vnodes <= 4096 else { throw ValidationError("--vnodes must be between 1 and 4096") }
    }

    func run() async throws {
        // Before the event loops and the store's threads first allocate (see ProcessMemory).
        ProcessMemory.configureAllocator()
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        // Every logger reads one switch, so CONFIG SET loglevel changes them all at once.
        let levelSwitch = LogLevelSwitch(level)
        LoggingSystem.bootstrap { label in
            SwitchedLogHandler(StreamLogHandler.standardError(label: label), levelSwitch: levelSwitch)
        }
        let logger = Logger(label: "strata")

        let metrics = ServerMetrics()
        let store: TieredStore
        do {
            store = try TieredStore(
                path: dataDir,
                configuration: StoreConfiguration(
                    memoryBudget: try size(memory, "memory"), diskBudget: try size(disk, "disk"),
                    compressThreshold: try size(compressThreshold, "compress-threshold"), fsync: fsync,
                    snapshotInterval: snapshotInterval,
                    // Breaks ties between two nodes' writes of one key in the same clock tick.
                    nodeID: nodeID.map { UInt32(truncatingIfNeeded: StableHash.hash(Array($0.utf8))) } ?? 0),
                logger: Logger(label: "strata.store"),
                metrics: metrics.storeFactory)
        } catch let error as StoreError {
            throw StartupError(description: "cannot use data directory: \(error.message)")
        }
        let configuration = ServerConfiguration(
            bind: bind, port: port, httpPort: httpPort, requirePass: requirepass,
            maxValueSize: try size(maxValueSize, "max-value-size"), maxClients: maxClients, ioThreads: eventLoopThreads,
            diskThreads: diskThreads, dataDirectory: dataDir)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoopThreads)
        var cluster: Cluster? = nil
        // A node whose data directory holds a membership is a member even without --peers.
        let savedMembership = FileManager.default.fileExists(atPath: dataDir + "/membership")
        if let nodeID, peers != nil || join != nil || savedMembership {
            do {
                cluster = try makeCluster(nodeID: NodeID(nodeID), group: group)
            } catch {
                store.close()
                try? await group.shutdownGracefully()
                throw error
            }
        }
        let server = Server(store: store, configuration: configuration, metrics: metrics, logger: logger, cluster: cluster,
            logLevelSwitch: levelSwitch)
        for case let (name, value?) in redisParameters {
            do {
                try server.configure(name, value)
            } catch {
                store.close()
                try? await group.shutdownGracefully()
                throw ValidationError("--\(name): \(error)")
            }
        }
        let resp = RESPService(server: server, group: group, logger: logger)
        // A node that was down while the cluster was flushed or changed learns of it first.
        await server.cluster?.catchUp()
        do {
            // Bind both ports before starting anything, so a port in use is one clear line.
            try await resp.bind()
            try probeHTTPPort()
        } catch {
            await resp.abandon()
            store.close()
            try? await group.shutdownGracefully()
            throw StartupError(description: describe(error))
        }
        // Shut down in reverse order: clients first, the cluster once no command needs a peer,
        // the store last.
        var list: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: StoreService(store: store, logger: logger))]
        if let node = server.cluster { list.append(.init(service: ClusterService(node: node, group: group))) }
        list += [.init(service: HTTPService(server: server, group: group, logger: logger)), .init(service: resp)]
        let services = ServiceGroup(
            configuration: .init(services: list, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        server.whenShutdownRequested {
            // SHUTDOWN: the same graceful stop as SIGTERM (every queued write is applied first).
            Task { await services.triggerGracefulShutdown() }
        }
        server.cluster?.whenLeft {
            // This node has left the cluster: stop as if by SIGTERM.
            Task { await services.triggerGracefulShutdown() }
        }
        do {
            try await services.run()
        } catch {
            store.close()
            try? await group.shutdownGracefully()
            throw StartupError(description: "\(describe(error))")
        }
        try? await group.shutdownGracefully()
        logger.info("stopped")
    }

    /// The cluster this node is in: the membership saved in the data directory (the newest it
    /// saw), else the one `--peers` or `--join` describes.
    private func makeCluster(nodeID: NodeID, group: any EventLoopGroup) throws -> Cluster {
        let defaultHost = bind == "0.0.0.0" || bind == "::" ? "127.0.0.1" : bind
        let address = advertise.flatMap(ClusterConfiguration.parseAddress) ?? (defaultHost, port)
        let configuration = ClusterConfiguration(
            nodeID: nodeID, peers: peers.flatMap(ClusterConfiguration.parsePeers) ?? [], address: address,
            join: join.flatMap(ClusterConfiguration.parseAddress), replicas: replicas, writeQuorum: writeQuorum,
            virtualNodes: vnodes, password: requirepass)
        var saved: Membership?
        do {
            saved = try MembershipFile(dataDirectory: dataDir).load()
        } catch {
            throw StartupError(description: "cannot read the saved cluster membership in \(dataDir)/membership: it is damaged")
        }
        if let membership = saved, membership.member(nodeID) == nil {
            guard join != nil else {
                throw StartupError(
                    description: "this node left the cluster (membership epoch \(membership.epoch)); start it with --join host:port to rejoin")
            }
            saved = nil  // rejoining: start over as a joiner
        }
        return Cluster(configuration: configuration, membership: saved, group: group, logger: Logger(label: "strata.cluster"))
    }

    private func describe(_ error: any Error) -> String {
        if let e = error as? IOError {
            return "cannot listen on \(bind):\(port) (client port): \(String(cString: strerror(e.errnoCode)))"
        }
        if let e = error as? StartupError { return e.description }
        return "\(error)"
    }

    /// Fails with a clear message if the HTTP port cannot be bound (Hummingbird binds it later).
    private func probeHTTPPort() throws {
        guard httpPort != 0 else { return }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(httpPort).bigEndian)
        guard inet_pton(AF_INET, bind, &address.sin_addr) == 1 else { return }  // a hostname: let Hummingbird report
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 {
            throw StartupError(description: "cannot listen on \(bind):\(httpPort) (HTTP port): \(String(cString: strerror(errno)))")
        }
    }
}
