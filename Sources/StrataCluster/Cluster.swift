import Logging
import NIOCore
import RESP
import StrataStore
import Synchronization

/// How a node joins the cluster it starts in.
public struct ClusterConfiguration: Sendable {
    /// Another node: its id and client address.
    public struct Peer: Sendable, Equatable {
        public var id: NodeID
        public var host: String
        public var port: Int

        public init(id: NodeID, host: String, port: Int) {
            self.id = id
            self.host = host
            self.port = port
        }
    }

    public var nodeID: NodeID
    /// The other nodes of the cluster this node starts in (`--peers`): its first membership,
    /// unless the data directory holds a newer one.
    public var peers: [Peer]
    /// Where peers reach this node (its client address).
    public var address: (host: String, port: Int)
    /// A member to ask for admission (`--join host:port`): the node starts as a joiner.
    public var join: (host: String, port: Int)?
    /// Owners per key.
    public var replicas: Int
    /// Acknowledgements (this node's included) a write waits for before its reply.
    public var writeQuorum: Int
    public var virtualNodes: Int
    /// Password peers give each other (the nodes' `--requirepass`).
    public var password: String?
    public var heartbeatInterval: TimeAmount
    /// A peer that has not answered for this long is down.
    public var failureTimeout: TimeAmount
    /// The longest any request to a peer may take.
    public var requestTimeout: TimeAmount

    public init(
        nodeID: NodeID, peers: [Peer] = [], address: (host: String, port: Int) = ("127.0.0.1", 7379),
        join: (host: String, port: Int)? = nil, replicas: Int = 2, writeQuorum: Int = 1, virtualNodes: Int = 128,
        password: String? = nil, heartbeatInterval: TimeAmount = .milliseconds(500),
        failureTimeout: TimeAmount = .seconds(2), requestTimeout: TimeAmount = .seconds(1)
    ) {
        self.nodeID = nodeID
        self.peers = peers.filter { $0.id != nodeID }
        self.address = peers.first { $0.id == nodeID }.map { ($0.host, $0.port) } ?? address
        self.join = join
        self.replicas = replicas
        self.writeQuorum = writeQuorum
        self.virtualNodes = virtualNodes
        self.password = password
        self.heartbeatInterval = heartbeatInterval
        self.failureTimeout = failureTimeout
        self.requestTimeout = requestTimeout
    }

    /// The membership a node starts with when its data directory holds none: the static list
    /// (epoch 0, the same on every node started from it), or only itself, joining.
    public var initialMembership: Membership {
        let me = Membership.Member(id: nodeID, host: address.host, port: address.port, state: join == nil ? .normal : .joining)
        if join != nil { return Membership(epoch: 0, members: [me]) }
        return Membership(epoch: 0, members: [me] + peers.map { Membership.Member(id: $0.id, host: $0.host, port: $0.port) })
    }

    /// Parses `host:port`.
    public static func parseAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        let host = String(text[..<colon])
        return host.isEmpty ? nil : (host, port)
    }

    /// Parses `--peers id=host:port,id=host:port`.
    public static func parsePeers(_ text: String) -> [Peer]? {
        var peers: [Peer] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let colon = parts[1].lastIndex(of: ":"), let port = Int(parts[1][parts[1].index(after: colon)...]),
                (1...65535).contains(port), !parts[0].isEmpty
            else { return nil }
            peers.append(Peer(id: NodeID(String(parts[0])), host: String(parts[1][..<colon]), port: port))
        }
        return peers
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        String(self.drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

extension Set where Element == Character {
    fileprivate static let whitespaces: Set<Character> = [" ", "\t", "\n"]
}

/// A node's view of the cluster: the membership and its rings, which peers are up, and clients
/// to reach them.
///
/// Heartbeats (`STRATA.HEARTBEAT epoch` every `heartbeatInterval`) mark a peer up when it answers
/// and down when it has not answered for `failureTimeout`, or at once when a request to it fails
/// to connect; a dead or hung (SIGSTOPped) peer therefore costs at most one request timeout
/// before traffic moves to the next owner. A heartbeat's reply is the peer's membership epoch:
/// a peer behind is sent this node's membership, a peer ahead is asked for its own.
///
/// While nodes join or leave there are two rings: the serving ring (normal and leaving nodes)
/// routes reads and writes, and the future ring (normal and joining nodes) says where keys are
/// going; writes go to the owners on both, so nothing written during a move is missed.
public final class Cluster: Sendable {

    struct Topology: Sendable {
        var membership: Membership
        var serving: HashRing
        var future: HashRing
        /// Whether the two rings differ (a node is joining or leaving).
        var moving: Bool
    }

    /// Connections to one peer. Client commands forwarded to the peer have their own
    /// connections, apart from the node-to-node traffic (heartbeats, replication, streaming): a
    /// forwarded write can wait for replication, and replies on a connection come in order, so
    /// a replica's acknowledgement queued behind a forwarded write that waits for it (each node
    /// forwarding to the other) would wait forever.
    struct Peer: Sendable {
        /// Heartbeats, replication, repair and membership.
        var control: PeerClient
        /// Forwarded client commands (RESP2).
        var client: PeerClient
        /// Forwarded client commands that speak RESP3, for relaying replies to RESP3 clients unchanged.
        var client3: PeerClient
        var all: [PeerClient] { [control, client, client3] }
    }

    public let configuration: ClusterConfiguration
    private let topology: Locked<Topology>
    private let peers: Locked<[NodeID: Peer]>
    /// Which peers are up.
    private let detector: Locked<FailureDetector>
    private let upHandlers = Locked<[@Sendable (NodeID) -> Void]>([])
    /// The newest flush this node knows, and what to do with a newer one a peer reports (set by
    /// `ClusterNode`): heartbeats carry it both ways.
    let flushFloor = Locked<FlushFloor?>(nil)
    struct FlushFloor: Sendable {
        var current: @Sendable () -> Version
        /// `inline`: apply it before returning (at start, before serving).
        var adopt: @Sendable (Version, _ inline: Bool) -> Void
    }
    private let changeHandlers = Locked<[@Sendable (Membership, Membership) -> Void]>([])
    /// The HTTP ports peers reported (`STRATA.CLUSTER HTTPPORT`), and whom to ask again.
    let httpPortReports = Locked(HTTPPortReports())
    private let group: any EventLoopGroup
    private let logger: Logger

    /// `membership`: where to start (a saved one, or `configuration.initialMembership`).
    public init(configuration: ClusterConfiguration, membership: Membership? = nil, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        let start = membership ?? configuration.initialMembership
        self.topology = Locked(Cluster.topology(start, virtualNodes: configuration.virtualNodes))
        clustered.store(Cluster.isClustered(start, configuration.nodeID), ordering: .relaxed)
        self.peers = Locked([:])
        self.detector = Locked(FailureDetector(timeout: configuration.failureTimeout))
        connectPeers(start)
    }

    private static func topology(_ membership: Membership, virtualNodes: Int) -> Topology {
        let serving = HashRing(nodes: membership.servingNodes, virtualNodes: virtualNodes)
        let moving = membership.servingNodes != membership.futureNodes
        let future = moving ? HashRing(nodes: membership.futureNodes, virtualNodes: virtualNodes) : serving
        return Topology(membership: membership, serving: serving, future: future, moving: moving)
    }

    /// Opens clients for new members and closes those of members that are gone.
    private func connectPeers(_ membership: Membership) {
        var handshake: [[String]] = []
        if let password = configuration.password { handshake.append(["AUTH", password]) }
        handshake.append(["STRATA.PEER", configuration.nodeID.name])
        let wanted = membership.members.filter { $0.id != nodeID }
        var closing: [PeerClient] = []
        peers.withLock { peers in
            for member in wanted {
                if let existing = peers[member.id], existing.client.host == member.host, existing.client.port == member.port {
                    continue
                }
                if let old = peers[member.id] { closing += old.all }
                peers[member.id] = Peer(
                    control: PeerClient(
                        node: member.id, host: member.host, port: member.port, group: group, handshake: handshake,
                        timeout: configuration.requestTimeout),
                    client: PeerClient(
                        node: member.id, host: member.host, port: member.port, group: group, handshake: handshake,
                        timeout: configuration.requestTimeout),
                    client3: PeerClient(
                        node: member.id, host: member.host, port: member.port, group: group,
                        handshake: handshake + [["HELLO", "3"]], timeout: configuration.requestTimeout))
            }
            for id in Array(peers.keys) where !wanted.contains(where: { $0.id == id }) {
                if let old = peers.removeValue(forKey: id) { closing += old.all }
            }
        }
        detector.withLock { $0.track(wanted.map(\.id), now: .now()) }
        for client in closing { client.close() }
    }

    public var nodeID: NodeID { configuration.nodeID }
    public var membership: Membership { topology.withLock { $0.membership } }
    public var epoch: UInt64 { topology.withLock { $0.membership.epoch } }
    /// The ring that routes requests now.
    public var ring: HashRing { topology.withLock { $0.serving } }
    /// Whether a node is joining or leaving.
    public var isMoving: Bool { topology.withLock { $0.moving } }

    /// Whether this node has peers, or is waiting to be admitted (otherwise every key is local).
    /// Read on every command, so kept beside the topology rather than under its lock.
    public var isClustered: Bool { clustered.load(ordering: .relaxed) }
    private let clustered = Atomic<Bool>(false)

    private static func isClustered(_ membership: Membership, _ node: NodeID) -> Bool {
        membership.members.count > 1 || membership.member(node)?.state != .normal
    }

    /// The other members.
    public var peerIDs: [NodeID] { topology.withLock { $0.membership.members.map(\.id).filter { $0 != nodeID } } }

    public func isLive(_ node: NodeID) -> Bool {
        node == configuration.nodeID || detector.withLock { $0.isUp(node) }
    }

    public var peerStates: [NodeID: PeerState] { detector.withLock { $0.peers } }

    /// Where `key` is read and written now: its owners that are up, in ring order (the first is
    /// the write coordinator). Only when every owner is down, the next live nodes on the ring
    /// stand in. (A stand-in for a down owner does not have the key's data, so reads never
    /// prefer one over a live owner.)
    public func owners(of key: [UInt8]) -> [NodeID] {
        let ring = self.ring
        let replicas = configuration.replicas
        let hash = HashRing.placementHash(key)
        let live = ring.owners(keyHash: hash, replicas: replicas).filter(isLive)
        if !live.isEmpty { return live }
        return ring.owners(keyHash: hash, replicas: replicas, isLive: isLive)
    }

    /// Every node that holds `key` or is about to: its owners on the serving ring, then any
    /// other owners on the future ring, live or not.
    public func allOwners(of key: [UInt8]) -> [NodeID] {
        let (serving, future, moving) = topology.withLock { ($0.serving, $0.future, $0.moving) }
        let hash = HashRing.placementHash(key)
        var owners = serving.owners(keyHash: hash, replicas: configuration.replicas)
        if moving {
            for node in future.owners(keyHash: hash, replicas: configuration.replicas) where !owners.contains(node) {
                owners.append(node)
            }
        }
        return owners
    }

    /// The owners of `key` once every change in progress is done.
    public func futureOwners(of key: [UInt8]) -> [NodeID] {
        topology.withLock { $0.future }.owners(of: key, replicas: configuration.replicas)
    }

    /// Takes `membership` if it supersedes the current one; returns whether it did.
    @discardableResult
    public func adopt(_ membership: Membership) -> Bool {
        let virtualNodes = configuration.virtualNodes
        let old = topology.withLock { current -> Membership? in
            guard membership.supersedes(current.membership) else { return nil }
            let old = current.membership
            current = Cluster.topology(membership, virtualNodes: virtualNodes)
            clustered.store(Cluster.isClustered(membership, nodeID), ordering: .relaxed)
            return old
        }
        guard let old else { return false }
        connectPeers(membership)
        logger.notice(
            "membership changed",
            metadata: [
                "epoch": "\(membership.epoch)",
                "members": "\(membership.members.map { "\($0.id)(\($0.state.rawValue))" }.joined(separator: " "))",
            ])
        for handler in changeHandlers.withLock({ $0 }) { handler(old, membership) }
        return true
    }

    /// Calls `handler(old, new)` after every membership change this node adopts.
    public func onMembershipChange(_ handler: @escaping @Sendable (Membership, Membership) -> Void) {
        changeHandlers.withLock { $0.append(handler) }
    }

    /// Sends heartbeats every `heartbeatInterval` until the task is cancelled.
    public func runHeartbeats() async {
        let interval = Duration.nanoseconds(configuration.heartbeatInterval.nanoseconds)
        while !Task.isCancelled {
            beat()
            try? await Task.sleep(for: interval)  // cancelled: the loop ends
        }
    }

    /// Closes every peer connection.
    public func stop() {
        let all = peers.withLock { $0.values.flatMap(\.all) }
        for client in all { client.close() }
    }

    func beat() {
        let mine = membership
        for id in mine.members.map(\.id) where id != nodeID {
            sendHeartbeat(to: id, membership: mine).whenSuccess { [weak self] answer in
                guard let self, let theirs = answer.epoch else { return }
                if let floor = answer.floor { self.flushFloor.withLock { $0 }?.adopt(floor, false) }
                switch HeartbeatAction(mine: mine.epoch, theirs: theirs) {
                case .fetchMembership: self.fetchMembership(from: id)
                case .pushMembership: _ = self.pushMembership(to: id)
                case .none: break
                }
            }
        }
        askHTTPPorts(mine)
    }

    /// `STRATA.HEARTBEAT epoch floor`: the reply is the peer's epoch and newest flush.
    private func sendHeartbeat(to id: NodeID, membership: Membership, timeout: TimeAmount? = nil)
        -> EventLoopFuture<(epoch: Int?, floor: Version?)>
    {
        var request = [ByteBuffer(string: "STRATA.HEARTBEAT"), ByteBuffer(string: String(membership.epoch))]
        if let floor = flushFloor.withLock({ $0 })?.current() { request.append(ByteBuffer(string: floor.text)) }
        return send(request, to: id, timeout: timeout).map { reply in
            if reply.kind == .array, reply.elements.count == 2 {
                return (reply.elements[0].integer, reply.elements[1].string.flatMap { Version(text: $0) })
            }
            return (reply.integer, nil)
        }
    }

    /// One heartbeat to `id`, waiting for its answer (at most `timeout`): takes the peer's flush
    /// at once and, if the peer is ahead, its membership. For a node about to serve.
    func heartbeat(_ id: NodeID, timeout: TimeAmount) async {
        let mine = membership
        guard let answer = try? await sendHeartbeat(to: id, membership: mine, timeout: timeout).get() else { return }
        if let floor = answer.floor { flushFloor.withLock { $0 }?.adopt(floor, true) }
        guard let theirs = answer.epoch, HeartbeatAction(mine: mine.epoch, theirs: theirs) == .fetchMembership else { return }
        let reply = try? await send([ByteBuffer(string: "STRATA.CLUSTER"), ByteBuffer(string: "MEMBERSHIP")], to: id, timeout: timeout)
            .get()
        if let text = reply?.string, let membership = Membership(encoded: text) { adopt(membership) }
    }

    /// Asks `node` for its membership and adopts it if newer.
    public func fetchMembership(from node: NodeID) {
        send([ByteBuffer(string: "STRATA.CLUSTER"), ByteBuffer(string: "MEMBERSHIP")], to: node).whenSuccess { [weak self] reply in
            guard let text = reply.string, let membership = Membership(encoded: text) else { return }
            self?.adopt(membership)
        }
    }

    /// Sends this node's membership to `node`; succeeds with whether it was accepted.
    public func pushMembership(to node: NodeID, _ membership: Membership? = nil) -> EventLoopFuture<Bool> {
        let text = (membership ?? self.membership).encoded
        return send([ByteBuffer(string: "STRATA.MEMBERSHIP"), ByteBuffer(string: text)], to: node).map { $0.kind != .error }
    }

    func markUp(_ id: NodeID) {
        let changed = detector.withLock { $0.answered(id, now: .now()) }
        if changed {
            httpPortReports.withLock { _ = $0.stale.insert(id) }  // it may have restarted on another port
            logger.notice("peer is up", metadata: ["peer": "\(id)"])
            for handler in upHandlers.withLock({ $0 }) { handler(id) }
        }
    }

    /// Calls `handler` whenever a peer that was down answers again.
    public func onPeerUp(_ handler: @escaping @Sendable (NodeID) -> Void) {
        upHandlers.withLock { $0.append(handler) }
    }

    /// A request to `id` failed: down once it has been silent for the failure timeout.
    func noteFailure(_ id: NodeID, immediately: Bool = false) {
        let changed = detector.withLock { $0.failed(id, now: .now(), immediately: immediately) }
        if changed { logger.warning("peer is down", metadata: ["peer": "\(id)"]) }
    }

    /// Sends a node-to-node command to `node`, marking the node down if it cannot be reached.
    public func send(_ arguments: [ByteBuffer], to node: NodeID, timeout: TimeAmount? = nil) -> EventLoopFuture<RESPReply> {
        send(arguments, to: node, over: { $0.control }, timeout: timeout)
    }

    /// Forwards a client's command to `node` (over a RESP3 connection if `resp3`, so that its
    /// reply can go to a RESP3 client unchanged).
    /// `timeout`: how long the reply may take (nil: the peer timeout; blocking commands wait longer).
    public func forward(_ arguments: [ByteBuffer], to node: NodeID, resp3: Bool, timeout: TimeAmount? = nil) -> EventLoopFuture<RESPReply> {
        send(arguments, to: node, over: { resp3 ? $0.client3 : $0.client }, timeout: timeout)
    }

    private func send(_ arguments: [ByteBuffer], to node: NodeID, over lane: (Peer) -> PeerClient, timeout: TimeAmount?)
        -> EventLoopFuture<RESPReply>
    {
        guard let peer = peers.withLock({ $0[node] }) else {
            return group.next().makeFailedFuture(PeerError.refused("unknown peer \(node)"))
        }
        let future = lane(peer).send(arguments, timeout: timeout)
        future.whenComplete { [weak self] result in
            switch result {
            case .success: self?.markUp(node)
            case .failure(let error):
                self?.logger.debug(
                    "request to peer failed", metadata: ["peer": "\(node)", "command": "\(String(buffer: arguments[0]))", "error": "\(error)"])
                // A refused or reset connection is as good as down; a timeout may be a slow peer.
                let immediate = (error as? PeerError) != .timedOut
                self?.noteFailure(node, immediately: immediate)
            }
        }
        return future
    }

    /// Sends a command to an address that may not be a member (a joiner asking to be admitted).
    public func send(_ arguments: [String], toAddress address: (host: String, port: Int), timeout: TimeAmount? = nil)
        -> EventLoopFuture<RESPReply>
    {
        var handshake: [[String]] = []
        if let password = configuration.password { handshake.append(["AUTH", password]) }
        handshake.append(["STRATA.PEER", configuration.nodeID.name])
        let client = PeerClient(
            node: NodeID("\(address.host):\(address.port)"), host: address.host, port: address.port, group: group,
            handshake: handshake, timeout: configuration.requestTimeout)
        let future = client.send(arguments.map { ByteBuffer(string: $0) }, timeout: timeout)
        future.whenComplete { _ in client.close() }
        return future
    }
}
