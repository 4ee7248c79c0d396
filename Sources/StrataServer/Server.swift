import Logging
import NIOCore
import NIOPosix
import Prometheus
import StrataCluster
import StrataScript
import StrataCollections
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
    /// Clients waiting in BLPOP and the other blocking pops.
    let blocked: BlockedClients
    let commands: CommandTable
    let cursors = ScanCursors()
    /// Makes transactions and scripts atomic: held shared by every command that touches data.
    let gate: AtomicGate
    /// The thread that runs scripts and transactions that cannot run on their event loop.
    let atomicRunner: AtomicRunner
    /// The acknowledgement count of the latest write coordinated here (WAIT, `STRATA.ACKED`).
    let lastAcknowledged = Locked<EventLoopFuture<Int>?>(nil)
    /// EVAL's script cache and the FUNCTION libraries, with their Lua VMs.
    let scripts: ScriptEngine
    /// This node's part in a cluster; nil (a single node): every key is local.
    public let cluster: ClusterNode?
    let startedAt = currentTimeMilliseconds()
    /// What CONFIG SET changes while the node runs.
    let settings: LiveSettings

    let clients = Locked<[UInt64: ClientSession]>([:])
    /// SLOWLOG's entries and thresholds.
    let slowLog = SlowLog()
    /// What SHUTDOWN does: the executable's graceful stop (the same as SIGTERM).
    let shutdownHandler = Locked<(@Sendable () -> Void)?>(nil)
    /// This node's pub/sub subscribers.
    let pubsub = PubSub()
    /// CLIENT PAUSE and UNPAUSE.
    let pause = ClientPause()
    /// Clients in MONITOR.
    let monitors = Monitors()
    /// Decoded large collections (a sixteenth of the memory tier's budget, at most 32 MiB).
    let collectionCache: CollectionCache
    /// `client-output-buffer-limit pubsub`: a subscriber whose unread output passes `hard`, or
    /// stays past `soft` for `softSeconds`, is closed.
    let pubsubOutputLimit = Locked((hard: 32 << 20, soft: 8 << 20, softSeconds: 60))
    /// Closes idle clients once `timeout` is set (started by the first CONFIG SET of it).
    private let idleSweep = Locked<RepeatedTask?>(nil)
    let nextClientID = Atomic<UInt64>(1)
    /// Connections, commands and bytes since the node started.
    let counters = ServerCounters()
    /// The RESP port actually bound (differs from the configured one when that was 0).
    let boundPort = Atomic<Int>(0)
    let boundHTTPPort = Atomic<Int>(0)

    public init(
        store: TieredStore, configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger,
        cluster: Cluster? = nil, logLevelSwitch: LogLevelSwitch? = nil
    ) {
        self.store = store
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.settings = LiveSettings(configuration: configuration, logLevel: logger.logLevel, levelSwitch: logLevelSwitch)
        self.collectionCache = CollectionCache(capacity: min(32 << 20, store.statistics.memoryBudget / 16))
        let diskPool = NIOThreadPool(numberOfThreads: max(1, configuration.diskThreads))
        self.diskPool = diskPool
        self.blocked = BlockedClients(pool: diskPool)
        let gate = AtomicGate()
        self.gate = gate
        self.atomicRunner = AtomicRunner(gate: gate)
        self.commands = CommandTable(metrics: metrics)
        self.scripts = FunctionsFile.engine(directory: configuration.dataDirectory, logger: logger)
        diskPool.start()
        self.cluster = cluster.map {
            ClusterNode(
                cluster: $0, store: store, pool: diskPool, dataDirectory: configuration.dataDirectory, metrics: metrics.cluster,
                logger: logger)
        }
    }

    /// The client port in use.
    public var port: Int { boundPort.load(ordering: .relaxed) }
    /// The HTTP port in use.
    public var httpPort: Int { boundHTTPPort.load(ordering: .relaxed) }

    /// How long a script runs before other clients get BUSY (Redis' busy-reply-threshold).
    var busyThreshold: Duration { .milliseconds(settings.busyReplyThresholdMilliseconds) }

    /// Where every command runs.
    var executor: CommandExecutor { CommandExecutor(server: self) }

    /// Makes SHUTDOWN call `handler` (the executable stops as it does on SIGTERM).
    public func whenShutdownRequested(_ handler: @escaping @Sendable () -> Void) {
        shutdownHandler.withLock { $0 = handler }
    }

    /// Starts, once, the sweep that closes normal clients idle past `timeout`, as Redis'
    /// clientsCron does: not peers and not clients blocked in a pop (their own timeout rules).
    func startIdleSweep(on eventLoop: any EventLoop) {
        idleSweep.withLock { task in
            guard task == nil else { return }
            task = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in
                let timeout = settings.clientIdleTimeoutSeconds
                guard timeout > 0 else { return }
                let now = currentTimeMilliseconds()
                // Activity is published at most a second late (ClientHandler.publish): allow for it.
                let limit = Int64(timeout) * 1000 + 1000
                for session in clients.withLock({ Array($0.values) }) {
                    let (idle, isPeer) = session.state.withLock { (now - $0.lastActivity, $0.isPeer) }
                    if idle > limit && !isPeer && !blocked.isBlocked(session: session.id) { session.kill() }
                }
            }
        }
    }

    var connectedClients: Int { clients.withLock { $0.count } }

    func shutdownPool() async {
        try? await diskPool.shutdownGracefully()
    }

    /// The error reply for any error a command can throw.
    static func replyText(for error: any Error) -> String {
        switch error {
        case let e as CommandError: return e.message
        case let e as CollectionCommandError: return "ERR \(e.message)"
        case let e as CollectionFormatError: return "ERR \(e.description)"
        case let e as ClusterError: return e.message
        case let e as StoreError:
            switch e.code {
            case .valueTooLarge: return "ERR \(e.message)"
            case .diskFull: return "ERR disk tier cannot accept writes: \(e.message)"
            case .wrongValue: return "ERR \(e.message)"
            case .wrongType: return e.message
            default: return "ERR \(e.message)"
            }
        default: return "ERR \(error)"
        }
    }
}
