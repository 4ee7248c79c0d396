import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import RESP
import ServiceLifecycle
import StrataStore

/// The counters and histograms cluster work advances; the caller makes them (the server, from
/// its Prometheus registry) so that this module needs no metrics backend.
public struct ClusterMetrics: Sendable {
    public let replicated: any CounterHandler
    public let replicationFailures: any CounterHandler
    /// From a write's apply to a replica's acknowledgement.
    public let replicationLag: any TimerHandler
    public let repaired: any CounterHandler
    public let handedOff: any CounterHandler
    public let rebalanced: any CounterHandler
    public let rangesEqual: any CounterHandler
    public let rangesDiffering: any CounterHandler

    public init(
        replicated: any CounterHandler, replicationFailures: any CounterHandler, replicationLag: any TimerHandler,
        repaired: any CounterHandler, handedOff: any CounterHandler, rebalanced: any CounterHandler,
        rangesEqual: any CounterHandler, rangesDiffering: any CounterHandler
    ) {
        self.replicated = replicated
        self.replicationFailures = replicationFailures
        self.replicationLag = replicationLag
        self.repaired = repaired
        self.handedOff = handedOff
        self.rebalanced = rebalanced
        self.rangesEqual = rangesEqual
        self.rangesDiffering = rangesDiffering
    }
}

/// A cluster-caused error, with the reply text a client gets (without the leading `-`).
public struct ClusterError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// This node's part in a cluster: everything beyond one node's store. It owns the topology and
/// peer connections (`Cluster`), replication of writes to the other owners (batched per peer),
/// hinted handoff, anti-entropy repair, membership changes (join, leave, forget) and the
/// rebalancing that follows them.
///
/// The server reaches it through a narrow surface: who owns a key, forward a command, replicate
/// a write, the membership commands, start and stop. A single node has none, and every key is
/// local.
public final class ClusterNode: Sendable {
    /// Topology, membership, heartbeats and peer connections.
    public let cluster: Cluster
    public let store: TieredStore
    /// Where scans and applies of the disk tier run (the server's disk threads).
    public let pool: NIOThreadPool
    let logger: Logger
    let metrics: ClusterMetrics
    /// Keys whose writes an owner missed while down, by owner (hinted handoff).
    let hints = Locked<[String: Set<[UInt8]>]>([:])
    let hintFile: HintFile
    /// Writes hint and membership files off the event loops, in order.
    let files: SerialWriter
    /// Where the newest cluster membership is kept.
    let membershipFile: MembershipFile
    /// Which membership moves (join or leave streaming, clean-up) this node is running.
    let moves = Locked(Moves())
    /// Called once this node has left the cluster (set by whoever runs the node, to exit).
    let onLeft = Locked<(@Sendable () -> Void)?>(nil)
    /// Batches copies of writes per peer.
    let replicaBatcher = ReplicaBatcher()
    private let boundHTTPPort = Locked(0)
    /// Asks the run loop to stream this node's part in a membership change.
    let moveSignal = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    /// Asks the run loop to clean up after the change that settled at this epoch.
    let cleanUpSignal = AsyncStream<UInt64>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// - Parameters:
    ///   - pool: threads for disk-tier scans and applies; started and shut down by the caller.
    ///   - dataDirectory: where hints and the membership are kept.
    public init(
        cluster: Cluster, store: TieredStore, pool: NIOThreadPool, dataDirectory: String, metrics: ClusterMetrics,
        logger: Logger
    ) {
        self.cluster = cluster
        self.store = store
        self.pool = pool
        self.metrics = metrics
        self.logger = logger
        let files = SerialWriter(logger: logger)
        self.files = files
        self.hintFile = HintFile(dataDirectory: dataDirectory.isEmpty ? "." : dataDirectory, writer: files, logger: logger)
        self.membershipFile = MembershipFile(dataDirectory: dataDirectory)
        cluster.flushFloor.withLock {
            $0 = Cluster.FlushFloor(
                current: { [store] in store.flushFloor },
                adopt: { [weak self] floor, inline in self?.adoptFloor(floor, inline: inline) })
        }
    }

    // MARK: What the server asks

    public var nodeID: NodeID { cluster.nodeID }
    /// Whether this node has peers (a cluster of one routes nothing).
    public var isClustered: Bool { cluster.isClustered }
    public var configuration: ClusterConfiguration { cluster.configuration }
    public var membership: Membership { cluster.membership }
    public var epoch: UInt64 { cluster.epoch }
    /// The live owners of `key`, coordinator first.
    public func owners(of key: [UInt8]) -> [NodeID] { cluster.owners(of: key) }
    /// Every owner of `key` on the serving and future rings, live or not.
    public func allOwners(of key: [UInt8]) -> [NodeID] { cluster.allOwners(of: key) }
    /// Whether this node is waiting to be admitted (it owns nothing yet).
    public var isWaitingToJoin: Bool { cluster.membership.member(nodeID)?.state == .joining && cluster.ring.nodes.isEmpty }

    /// Sends a client's command to `node` on a connection for forwarded commands.
    /// `timeout`: how long the reply may take (nil: the peer timeout).
    public func forward(_ arguments: [ByteBuffer], to node: NodeID, resp3: Bool, timeout: TimeAmount? = nil) -> EventLoopFuture<RESPReply> {
        cluster.forward(arguments, to: node, resp3: resp3, timeout: timeout)
    }

    /// Where this node serves `/metrics` (0 until the HTTP port is bound): told to the members
    /// when joining, and recorded in the memberships this node proposes.
    public var httpPort: Int {
        get { boundHTTPPort.withLock { $0 } }
        set { boundHTTPPort.withLock { $0 = newValue } }
    }

    /// The members' HTTP ports this node knows, its own included.
    public var knownHTTPPorts: [NodeID: Int] {
        var ports = cluster.peerHTTPPorts
        let own = httpPort
        if own > 0 { ports[nodeID] = own }
        return ports
    }

    /// Hints owed to peers that were down for a write, not yet handed off.
    public var pendingHints: Int { hints.withLock { $0.values.reduce(0) { $0 + $1.count } } }
    /// Copies of writes queued or sent and not yet acknowledged.
    public var replicationInFlight: Int { replicaBatcher.inFlight }

    // MARK: Running

    /// Calls `handler` once this node has left the cluster (the caller stops the process).
    public func whenLeft(_ handler: @escaping @Sendable () -> Void) {
        onLeft.withLock { $0 = handler }
    }

    /// Runs the cluster work until graceful shutdown: heartbeats, handoff when a peer returns,
    /// anti-entropy at start and every `repairInterval`, and membership work. Peer connections
    /// are closed when it returns.
    public func run(group: any EventLoopGroup) async {
        startClusterRepair(group: group)
        startMembership()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask { await self.cluster.runHeartbeats() }
                self.runMembershipWork(in: &tasks)
                if self.cluster.isClustered {
                    for peer in self.cluster.peerIDs { tasks.addTask { await self.repairAtStart(from: peer) } }
                    tasks.addTask { await self.runPeriodicRepair() }
                }
            }
        }
        cluster.stop()
        await files.flush()  // the last membership is on disk before the node exits
    }

    /// Hint and membership files that could not be written since the node started.
    public var fileWriteFailures: Int { files.failedWrites }
}

/// The cluster work as a service of the node's `ServiceGroup`: it stops, and closes its peer
/// connections, on graceful shutdown.
public struct ClusterService: Service {
    let node: ClusterNode
    let group: any EventLoopGroup

    public init(node: ClusterNode, group: any EventLoopGroup) {
        self.node = node
        self.group = group
    }

    public func run() async {
        await node.run(group: group)
    }
}
