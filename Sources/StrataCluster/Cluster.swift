import Logging
import NIOConcurrencyHelpers
import NIOCore
import RESP

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
    public var peers: [Peer]
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
        nodeID: NodeID, peers: [Peer] = [], replicas: Int = 2, writeQuorum: Int = 1, virtualNodes: Int = 128,
        password: String? = nil, heartbeatInterval: TimeAmount = .milliseconds(500),
        failureTimeout: TimeAmount = .seconds(2), requestTimeout: TimeAmount = .seconds(1)
    ) {
        self.nodeID = nodeID
        self.peers = peers.filter { $0.id != nodeID }
        self.replicas = replicas
        self.writeQuorum = writeQuorum
        self.virtualNodes = virtualNodes
        self.password = password
        self.heartbeatInterval = heartbeatInterval
        self.failureTimeout = failureTimeout
        self.requestTimeout = requestTimeout
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

/// A node's view of the cluster: the ring, which peers are up, and clients to reach them.
///
/// Heartbeats (PING every `heartbeatInterval`) mark a peer up when it answers and down when it has
/// not answered for `failureTimeout`, or at once when a request to it fails to connect; a dead
/// or hung (SIGSTOPped) peer therefore costs at most one request timeout before traffic moves
/// to the next owner.
public final class Cluster: Sendable {
    public struct PeerState: Sendable {
        public var up: Bool
        public var lastSeen: NIODeadline
    }

    public let configuration: ClusterConfiguration
    public let ring: HashRing
    public let clients: [NodeID: PeerClient]
    /// Connections that speak RESP3, for relaying replies to RESP3 clients unchanged.
    public let clients3: [NodeID: PeerClient]
    private let states: NIOLockedValueBox<[NodeID: PeerState]>
    private let heartbeat = NIOLockedValueBox<RepeatedTask?>(nil)
    private let upHandlers = NIOLockedValueBox<[@Sendable (NodeID) -> Void]>([])
    private let group: any EventLoopGroup
    private let logger: Logger

    public init(configuration: ClusterConfiguration, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.ring = HashRing(
            nodes: [configuration.nodeID] + configuration.peers.map(\.id), virtualNodes: configuration.virtualNodes)
        var handshake: [[String]] = []
        if let password = configuration.password { handshake.append(["AUTH", password]) }
        handshake.append(["STRATA.PEER", configuration.nodeID.name])
        var clients: [NodeID: PeerClient] = [:]
        var clients3: [NodeID: PeerClient] = [:]
        var states: [NodeID: PeerState] = [:]
        for peer in configuration.peers {
            clients[peer.id] = PeerClient(
                node: peer.id, host: peer.host, port: peer.port, group: group, handshake: handshake,
                timeout: configuration.requestTimeout)
            clients3[peer.id] = PeerClient(
                node: peer.id, host: peer.host, port: peer.port, group: group, handshake: handshake + [["HELLO", "3"]],
                timeout: configuration.requestTimeout)
            // Optimistic: a peer is up until it fails to answer.
            states[peer.id] = PeerState(up: true, lastSeen: .now())
        }
        self.clients = clients
        self.clients3 = clients3
        self.states = NIOLockedValueBox(states)
    }

    /// Whether this node has peers (otherwise every key is local).
    public var isClustered: Bool { !configuration.peers.isEmpty }
    public var nodeID: NodeID { configuration.nodeID }

    public func isLive(_ node: NodeID) -> Bool {
        node == configuration.nodeID || states.withLockedValue { $0[node]?.up ?? false }
    }

    public var peerStates: [NodeID: PeerState] { states.withLockedValue { $0 } }

    /// Where `key` is read and written now: its owners that are up, in ring order (the first is
    /// the write coordinator). Only when every owner is down, the next live nodes on the ring
    /// stand in. (A stand-in for a down owner does not have the key's data, so reads never
    /// prefer one over a live owner.)
    public func owners(of key: [UInt8]) -> [NodeID] {
        let live = allOwners(of: key).filter(isLive)
        if !live.isEmpty { return live }
        return ring.owners(of: key, replicas: configuration.replicas, isLive: isLive)
    }

    /// Every owner of `key`, live or not.
    public func allOwners(of key: [UInt8]) -> [NodeID] {
        ring.owners(of: key, replicas: configuration.replicas)
    }

    public func start() {
        guard isClustered else { return }
        let task = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: configuration.heartbeatInterval) {
            [weak self] _ in
            self?.beat()
        }
        heartbeat.withLockedValue { $0 = task }
    }

    public func stop() {
        heartbeat.withLockedValue { $0?.cancel() }
        for client in clients.values { client.close() }
        for client in clients3.values { client.close() }
    }

    private func beat() {
        for (id, client) in clients {
            client.send([ByteBuffer(string: "PING")]).whenComplete { [weak self] result in
                guard let self else { return }
                switch result {
                case .success(let reply) where reply.kind != .error: self.markUp(id)
                default: self.noteFailure(id)
                }
            }
        }
    }

    func markUp(_ id: NodeID) {
        let changed = states.withLockedValue { states -> Bool in
            let was = states[id]?.up ?? false
            states[id] = PeerState(up: true, lastSeen: .now())
            return !was
        }
        if changed {
            logger.notice("peer is up", metadata: ["peer": "\(id)"])
            for handler in upHandlers.withLockedValue({ $0 }) { handler(id) }
        }
    }

    /// Calls `handler` whenever a peer that was down answers again.
    public func onPeerUp(_ handler: @escaping @Sendable (NodeID) -> Void) {
        upHandlers.withLockedValue { $0.append(handler) }
    }

    /// A request to `id` failed: down once it has been silent for the failure timeout.
    func noteFailure(_ id: NodeID, immediately: Bool = false) {
        let timeout = configuration.failureTimeout
        let changed = states.withLockedValue { states -> Bool in
            guard var state = states[id], state.up else { return false }
            if immediately || NIODeadline.now() - state.lastSeen >= timeout {
                state.up = false
                states[id] = state
                return true
            }
            return false
        }
        if changed { logger.warning("peer is down", metadata: ["peer": "\(id)"]) }
    }

    /// Sends a command to `node` (over a RESP3 connection if `resp3`, so that its reply can go to
    /// a RESP3 client unchanged), marking the node down if it cannot be reached.
    public func send(_ arguments: [ByteBuffer], to node: NodeID, resp3: Bool = false) -> EventLoopFuture<RESPReply> {
        guard let client = resp3 ? clients3[node] : clients[node] else {
            return group.next().makeFailedFuture(PeerError.refused("unknown peer \(node)"))
        }
        let future = client.send(arguments)
        future.whenComplete { [weak self] result in
            switch result {
            case .success: self?.markUp(node)
            case .failure(let error):
                // A refused or reset connection is as good as down; a timeout may be a slow peer.
                let immediate = (error as? PeerError) != .timedOut
                self?.noteFailure(node, immediately: immediate)
            }
        }
        return future
    }
}
