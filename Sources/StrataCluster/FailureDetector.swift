import NIOCore

/// What a node knows of one peer's health.
public struct PeerState: Sendable, Equatable {
    public var up: Bool
    /// When it last answered.
    public var lastSeen: NIODeadline
}

/// Which peers are up, from what their requests did: a peer is up once it answers, and down
/// when a request to it fails after it has been silent for `timeout` (or at once, when it
/// cannot even be connected to). Time comes in as an argument, so tests run it on a manual clock.
struct FailureDetector: Sendable {
    let timeout: TimeAmount
    private(set) var peers: [NodeID: PeerState] = [:]

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// Follows a membership: new peers start up (optimistically, until they fail to answer);
    /// peers no longer members are forgotten.
    mutating func track(_ members: [NodeID], now: NIODeadline) {
        for id in members where peers[id] == nil { peers[id] = PeerState(up: true, lastSeen: now) }
        for id in Array(peers.keys) where !members.contains(id) { peers[id] = nil }
    }

    func isUp(_ id: NodeID) -> Bool { peers[id]?.up ?? false }

    /// `id` answered; returns whether it was down until now.
    mutating func answered(_ id: NodeID, now: NIODeadline) -> Bool {
        guard let state = peers[id] else { return false }
        peers[id] = PeerState(up: true, lastSeen: now)
        return !state.up
    }

    /// A request to `id` failed; returns whether that makes it down.
    mutating func failed(_ id: NodeID, now: NIODeadline, immediately: Bool = false) -> Bool {
        guard var state = peers[id], state.up else { return false }
        guard immediately || now - state.lastSeen >= timeout else { return false }
        state.up = false
        peers[id] = state
        return true
    }
}

/// What a heartbeat's reply (the peer's membership epoch) asks of this node.
enum HeartbeatAction: Equatable {
    /// The peer knows a newer membership: fetch it.
    case fetchMembership
    /// The peer is behind: send it this node's membership.
    case pushMembership
    case none

    init(mine: UInt64, theirs: Int) {
        if theirs > Int(clamping: mine) {
            self = .fetchMembership
        } else if theirs < Int(clamping: mine) {
            self = .pushMembership
        } else {
            self = .none
        }
    }
}
