import NIOCore
import RESP
import StrataStore

/// Which nodes were up, at which membership epoch: the view in which a cluster-wide command
/// (DBSIZE, KEYS, SCAN, INFO's keyspace) asks every node for the keys it coordinates. Every node
/// computes a key's coordinator from the same view, so each key is counted by exactly one node,
/// whatever each node's own failure detector says at that moment.
public struct KeyspaceView: Sendable, Equatable {
    public let epoch: UInt64
    /// Live members of the serving ring, sorted.
    public let live: [NodeID]

    public init(epoch: UInt64, live: [NodeID]) {
        self.epoch = epoch
        self.live = live.sorted()
    }

    /// `epoch:node,node,...`, as peers receive it.
    public var encoded: String { "\(epoch):" + live.map(\.name).joined(separator: ",") }

    public init?(encoded: String) {
        let parts = encoded.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let epoch = UInt64(parts[0]) else { return nil }
        self.init(epoch: epoch, live: parts[1].split(separator: ",").map { NodeID(String($0)) })
    }
}

/// Which of its keys a node reports to a cluster-wide command.
public enum KeyFilter: Sendable {
    /// The keys this node coordinates in the view (each key once across the cluster).
    case coordinated(KeyspaceView)
    /// Every key this node holds (a key held by several owners is reported by each).
    case all
}

/// The keyspace as one cache: cluster-wide flushes, and the local half of cluster-wide counts
/// and listings (the server gathers them from every node).
///
/// A flush is a version (`TieredStore.flush`): its floor. The node that takes FLUSHALL makes it
/// and sends it to every live member (`STRATA.FLUSH`); the floor also rides on every heartbeat
/// in both directions, so a node that missed it (down, or partitioned) takes it within a
/// heartbeat of being reachable, and `catchUp` takes it before a starting node serves. Records at
/// or below the floor are refused by every store, so replication, hinted handoff, anti-entropy
/// and rebalancing cannot bring a flushed key back.
extension ClusterNode {
    // MARK: Flush

    /// Flushes the whole cluster: here, then every live member. Succeeds with how many nodes
    /// applied it (this one included) once each live member answered; fails if fewer than the
    /// write quorum did (the others take it from heartbeats when they can).
    public func flushCluster(eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        guard let floor = store.flush() else { return eventLoop.makeSucceededFuture(1) }
        logger.notice("flushed the cluster", metadata: ["floor": "\(floor)"])
        let peers = cluster.peerIDs.filter { cluster.isLive($0) }
        let request = [ByteBuffer(string: "STRATA.FLUSH"), ByteBuffer(string: floor.text)]
        let sends = peers.map { peer in
            // A big memory tier takes a while to drop: longer than a heartbeat's deadline.
            cluster.send(request, to: peer, timeout: .seconds(10)).map { $0.kind != .error }.recover { _ in false }
        }
        let quorum = configuration.writeQuorum
        return EventLoopFuture.whenAllSucceed(sends, on: eventLoop).flatMapThrowing { acknowledged in
            let applied = 1 + acknowledged.filter { $0 }.count
            guard applied >= quorum else {
                throw ClusterError(
                    "ERR the flush reached \(applied) of the \(quorum) nodes --write-quorum asks for; the others apply it when they answer again")
            }
            return applied
        }
    }

    /// Takes a peer's flush if it is newer than this node's; `inline`: now, else on a disk thread
    /// (dropping a big memory tier takes a while, and heartbeats answer on event loops).
    public func adoptFloor(_ floor: Version, inline: Bool = false) {
        guard floor > store.flushFloor else { return }
        let (store, logger) = (self.store, self.logger)
        let apply: @Sendable () -> Void = {
            if store.flush(upTo: floor) != nil { logger.notice("took a flush from a peer", metadata: ["floor": "\(floor)"]) }
        }
        if inline { apply() } else { pool.submit { _ in apply() } }
    }

    /// Before this node serves clients: one heartbeat to every peer (at most `timeout`), taking
    /// any newer flush and membership they report. A node that was down during a FLUSHALL or a
    /// membership change so never answers with what was flushed or moved.
    public func catchUp(timeout: TimeAmount = .seconds(2)) async {
        guard cluster.isClustered else { return }
        let floorBefore = store.flushFloor
        let epochBefore = cluster.epoch
        await withTaskGroup(of: Void.self) { group in
            for peer in cluster.peerIDs {
                group.addTask { await self.cluster.heartbeat(peer, timeout: timeout) }
            }
        }
        if store.flushFloor != floorBefore || cluster.epoch != epochBefore {
            logger.notice(
                "caught up with the cluster before serving",
                metadata: ["floor": "\(store.flushFloor)", "epoch": "\(cluster.epoch)"])
        }
    }

    // MARK: Keys

    /// This node's view now: the membership epoch and the live members of the serving ring.
    public var keyspaceView: KeyspaceView {
        let ring = cluster.ring
        return KeyspaceView(epoch: cluster.epoch, live: ring.nodes.filter(cluster.isLive))
    }

    /// Whether this node reports a key under `filter`. Throws if the view is from another epoch
    /// (the asker retries with a fresh one).
    func reporter(_ filter: KeyFilter) throws -> @Sendable ([UInt8]) -> Bool {
        guard case .coordinated(let view) = filter else { return { _ in true } }
        let (ring, epoch) = (cluster.ring, cluster.epoch)
        guard epoch == view.epoch else {
            throw ClusterError("EPOCH this node is at membership epoch \(epoch), the request at \(view.epoch)")
        }
        let live = ring.nodes.map { view.live.contains($0) }
        guard let me = ring.nodes.firstIndex(of: nodeID) else { return { _ in false } }
        return { key in ring.coordinator(keyHash: HashRing.placementHash(key), live: live) == me }
    }

    /// The keys (with their expiry) this node reports under `filter` among the next `count`
    /// entries of its store after `position`, and where to continue (nil: done). Reads the disk:
    /// call it off the event loops.
    public func keys(_ filter: KeyFilter, after position: [UInt8]?, count: Int) throws
        -> (keys: [ScannedKey], next: [UInt8]?)
    {
        let reports = try reporter(filter)
        let (found, next) = try store.scanWithExpiry(cursor: position, count: count)
        return (found.filter { reports($0.key) }, next)
    }

    /// How many keys, and of them with an expiry, this node reports under `filter`. Reads the
    /// disk: call it off the event loops.
    public func countKeys(_ filter: KeyFilter) throws -> (keys: Int, expires: Int) {
        let reports = try reporter(filter)
        var (keys, expires) = (0, 0)
        var position: [UInt8]? = nil
        repeat {
            let (found, next) = try store.scanWithExpiry(cursor: position, count: 10_000)
            for entry in found where reports(entry.key) {
                keys += 1
                if entry.expiresAt != 0 { expires += 1 }
            }
            position = next
        } while position != nil
        return (keys, expires)
    }

    /// Sends `request` to every node of `view` but this one while `local` runs here on a disk
    /// thread; succeeds with every node's answer (this node's first), or fails with the first
    /// failure (a node that cannot be reached, or one at another epoch).
    public func gather<T: Sendable>(
        _ view: KeyspaceView, request: [ByteBuffer], eventLoop: any EventLoop, timeout: TimeAmount = .seconds(30),
        local: @escaping @Sendable () throws -> T, parse: @escaping @Sendable (RESPReply) throws -> T
    ) -> EventLoopFuture<[T]> {
        var answers = [pool.runIfActive(eventLoop: eventLoop, local)]
        for node in view.live where node != nodeID {
            answers.append(
                cluster.send(request, to: node, timeout: timeout).hop(to: eventLoop).flatMapThrowing { reply in
                    if reply.kind == .error { throw ClusterError(reply.string ?? "ERR \(node) failed") }
                    return try parse(reply)
                })
        }
        return EventLoopFuture.whenAllSucceed(answers, on: eventLoop)
    }

    /// `attempt` with a fresh view until it succeeds, up to `attempts` times 200 ms apart: a
    /// node may go down, or the membership change, while a cluster-wide command runs.
    public func retrying<T: Sendable>(
        attempts: Int = 5, eventLoop: any EventLoop, _ attempt: @escaping @Sendable (KeyspaceView) -> EventLoopFuture<T>
    ) -> EventLoopFuture<T> {
        attempt(keyspaceView).flatMapError { error -> EventLoopFuture<T> in
            guard attempts > 1 else { return eventLoop.makeFailedFuture(error) }
            return eventLoop.flatScheduleTask(in: .milliseconds(200)) {
                self.retrying(attempts: attempts - 1, eventLoop: eventLoop, attempt)
            }.futureResult
        }
    }
}
