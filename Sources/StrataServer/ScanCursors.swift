import NIOCore
import StrataCluster
import StrataStore

/// Where a SCAN continues. Redis clients parse the cursor as an integer; this node keeps what the
/// integer stands for.
enum ScanPosition: Sendable {
    /// This node's store, after this storage key.
    case local([UInt8])
    /// A cluster-wide scan, kept by the node that answered it.
    case cluster(ClusterScan)
}

/// A cluster-wide SCAN under way: which nodes it has been through and where it is in the current
/// one. Each node reports the keys it coordinates in the view the scan started with, so a stable
/// cluster returns every key exactly once. If the view changes (a node goes down or comes back,
/// a member joins or leaves), the scan starts its coverage again with every node reporting every
/// key it holds: keys may come twice, but a key present for the whole scan is never missed.
struct ClusterScan: Sendable {
    var view: KeyspaceView
    var all = false
    var visited: [NodeID] = []
    var current: NodeID?
    var position: [UInt8]?
}

/// SCAN's integer cursors: the most recent 100,000 positions (oldest dropped first); an unknown
/// cursor is an error. In a cluster a cursor is `tag << 48 | id`, where `tag` names the node that
/// keeps it, so any node can pass the cursor on to it.
final class ScanCursors: Sendable {
    private struct State: Sendable {
        var positions: [UInt64: ScanPosition] = [:]
        var order: [UInt64] = []
        var next: UInt64 = 1
    }

    private let state = Locked(State())
    private let capacity = 100_000
    static let idBits = 48

    /// A new cursor id for `position` (below 2^48).
    func make(_ position: ScanPosition) -> UInt64 {
        state.withLock { s in
            let id = s.next
            s.next = s.next + 1 == 1 << ScanCursors.idBits ? 1 : s.next + 1
            s.positions[id] = position
            s.order.append(id)
            if s.order.count > capacity {
                let drop = s.order.count - capacity
                for old in s.order.prefix(drop) { s.positions[old] = nil }
                s.order.removeFirst(drop)
            }
            return id
        }
    }

    /// Where cursor id `id` continues; nil if unknown.
    func position(_ id: UInt64) -> ScanPosition? {
        state.withLock { $0.positions[id] }
    }

    /// The tag in the cursors of the node `node` (15 bits, so a cursor stays below 2^63 for
    /// clients that read it as a signed integer).
    static func tag(_ node: NodeID) -> UInt64 {
        StableHash.hash(Array(node.name.utf8)) & 0x7FFF
    }
}
