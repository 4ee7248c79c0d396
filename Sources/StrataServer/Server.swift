import Logging
import NIOCore
import NIOPosix
import Prometheus
import StrataCluster
import StrataStore
import Synchronization

/// Everything a node's connections share: the store, the configuration, the command table, the
/// disk thread pool, metrics and the list of clients. One per node.
public final class Server: Sendable {
    public let store: TieredStore
    public let configuration: ServerConfiguration
    public let metrics: ServerMetrics
    let logger: Logger
    let diskPool: NIOThreadPool
    let commands: CommandTable
    let cursors = ScanCursors()
    /// Keys whose writes an owner missed while down, by owner (hinted handoff).
    let hints = Locked<[String: Set<[UInt8]>]>([:])
    let hintFile: HintFile
    /// Where the newest cluster membership is kept.
    let membershipFile: MembershipFile
    /// Which membership moves (join or leave streaming, clean-up) this node is running.
    let moves = Locked(Moves())
    /// Called once this node has left the cluster (set by whoever runs the server, to exit).
    let onLeft = Locked<(@Sendable () -> Void)?>(nil)
    /// The periodic anti-entropy task.
    let repairTask = Locked<RepeatedTask?>(nil)
    /// Batches copies of writes per peer.
    let replicaBatcher = ReplicaBatcher()
    /// The cluster this node is part of; nil or without peers: every key is local.
    public let cluster: Cluster?
    let startedAt = currentTimeMilliseconds()

    let clients = Locked<[UInt64: ClientSession]>([:])
    let nextClientID = Atomic<UInt64>(1)
    let connectionsReceived = Atomic<Int>(0)
    let connectionsRejected = Atomic<Int>(0)
    let commandsProcessed = Atomic<Int>(0)
    let bytesIn = Atomic<Int>(0)
    let bytesOut = Atomic<Int>(0)
    /// The RESP port actually bound (differs from the configured one when that was 0).
    let boundPort = Atomic<Int>(0)
    let boundHTTPPort = Atomic<Int>(0)

    public init(
        store: TieredStore, configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger,
        cluster: Cluster? = nil
    ) {
        self.cluster = cluster
        self.hintFile = HintFile(dataDirectory: configuration.dataDirectory.isEmpty ? "." : configuration.dataDirectory)
        self.membershipFile = MembershipFile(dataDirectory: configuration.dataDirectory)
        self.store = store
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.diskPool = NIOThreadPool(numberOfThreads: max(1, configuration.diskThreads))
        self.commands = CommandTable(metrics: metrics)
        diskPool.start()
    }

    /// The client port in use.
    public var port: Int { boundPort.load(ordering: .relaxed) }
    /// The HTTP port in use.
    public var httpPort: Int { boundHTTPPort.load(ordering: .relaxed) }

    /// Where every command runs.
    var executor: CommandExecutor { CommandExecutor(server: self) }

    var connectedClients: Int { clients.withLock { $0.count } }

    func shutdownPool() async {
        try? await diskPool.shutdownGracefully()
    }

    /// The error reply for any error a command can throw.
    static func replyText(for error: any Error) -> String {
        switch error {
        case let e as CommandError: return e.message
        case let e as StoreError:
            switch e.code {
            case .valueTooLarge: return "ERR \(e.message)"
            case .diskFull: return "ERR disk tier cannot accept writes: \(e.message)"
            case .wrongValue: return "ERR \(e.message)"
            default: return "ERR \(e.message)"
            }
        default: return "ERR \(error)"
        }
    }
}
