import NIOCore
import RESP
import StrataCluster
import StrataStore

extension Commands {
    static let cluster: [CommandSpec] = [
        // Sent by a peer when it connects (after AUTH): its commands then run here, unrouted.
        CommandSpec("strata.peer", arity: 2, flags: .admin) { inv in
            guard let cluster = inv.server.cluster, cluster.ring.nodes.contains(NodeID(inv.string(1))) else {
                throw CommandError("ERR \(inv.string(1)) is not a member of this cluster")
            }
            inv.session.state.withLock { $0.isPeer = true }
            inv.ok()
            return .done
        },

        // A replica's copy of a write: applied if newer than what this node holds (last writer wins).
        CommandSpec("strata.replicate", arity: 3, flags: [.local], keys: (1, 1, 1)) { inv in
            guard inv.session.state.withLock({ $0.isPeer }) else {
                throw CommandError("ERR STRATA.REPLICATE is for cluster peers")
            }
            let (key, record, store) = (inv.bytes(1), inv.bytes(2), inv.store)
            return inv.offload { out, _ in
                out.writeRESPInteger(try store.applyRecord(key, record: record) ? 1 : 0)
            }
        },

        // STRATA.SYNC node cursor count: a batch of the records `node` owns, for repair.
        CommandSpec("strata.sync", arity: 4, flags: .admin) { inv in
            guard inv.session.state.withLock({ $0.isPeer }), let cluster = inv.server.cluster else {
                throw CommandError("ERR STRATA.SYNC is for cluster peers")
            }
            guard let cursor = TieredStore.RecordCursor(bytes: inv.bytes(2)) else { throw CommandError("ERR invalid cursor") }
            let node = NodeID(inv.string(1))
            let count = try inv.integer(3)
            let store = inv.store
            return inv.offload { out, _ in
                let (records, next) = try store.scanRecords(from: cursor, limit: min(max(count, 1), 10_000))
                let owned = records.filter { cluster.allOwners(of: $0.key).contains(node) }
                out.writeRESPArrayHeader(2)
                out.writeRESPBulk(next?.bytes ?? [])
                out.writeRESPArrayHeader(owned.count * 2)
                for pair in owned {
                    out.writeRESPBulk(pair.key)
                    out.writeRESPBulk(pair.record)
                }
            }
        },

        // STRATA.CLUSTER [NODES | OWNERS key]: members and their state, and a key's owners.
        CommandSpec("strata.cluster", arity: -1, flags: .admin) { inv in
            let sub = inv.arguments.count > 1 ? inv.upper(1) : "NODES"
            guard let cluster = inv.server.cluster else {
                if sub == "OWNERS" {
                    inv.out.writeRESPArrayHeader(1)
                    inv.bulk("self")
                } else {
                    inv.out.writeRESPArrayHeader(0)
                }
                return .done
            }
            switch sub {
            case "NODES":
                let states = cluster.peerStates
                let nodes = cluster.ring.nodes
                inv.out.writeRESPArrayHeader(nodes.count)
                for node in nodes {
                    let isSelf = node == cluster.nodeID
                    let peer = cluster.configuration.peers.first { $0.id == node }
                    inv.out.writeRESPMapHeader(4, inv.version)
                    inv.bulk("id")
                    inv.bulk(node.name)
                    inv.bulk("address")
                    inv.bulk(isSelf ? "\(inv.server.configuration.bind):\(inv.server.port)" : "\(peer?.host ?? "?"):\(peer?.port ?? 0)")
                    inv.bulk("state")
                    inv.bulk(isSelf || (states[node]?.up ?? false) ? "up" : "down")
                    inv.bulk("self")
                    inv.integer(reply: isSelf ? 1 : 0)
                }
            case "OWNERS":
                guard inv.arguments.count == 3 else { throw CommandError.arity("strata.cluster|owners") }
                let owners = cluster.allOwners(of: inv.bytes(2))
                inv.out.writeRESPArrayHeader(owners.count)
                for owner in owners { inv.bulk(owner.name) }
            default:
                throw CommandError("ERR unknown subcommand '\(inv.string(1))'. Try STRATA.CLUSTER NODES or OWNERS key.")
            }
            return .done
        },
    ]
}
