import NIOCore
import RESP
import StrataCluster
import StrataStore

extension Commands {
    static let cluster: [CommandSpec] = [
        // Sent by a peer when it connects (after AUTH): its commands then run here, unrouted. Any
        // node may say it (a joiner is not a member yet); with --requirepass only nodes that know
        // the password get this far.
        CommandSpec("strata.peer", arity: 2, flags: .admin) { inv in
            guard inv.server.cluster != nil, Membership.isValidName(inv.string(1)) else {
                throw CommandError("ERR this node is not in a cluster, or '\(inv.string(1))' is not a node id")
            }
            inv.session.state.withLock { $0.isPeer = true }
            inv.ok()
            return .done
        },

        // STRATA.HEARTBEAT epoch [floor]: a peer's liveness check. The reply is this node's
        // membership epoch, or with the peer's newest flush (taken here if newer), the epoch and
        // this node's newest flush: so a flush reaches every node a heartbeat reaches.
        CommandSpec("strata.heartbeat", arity: -2, flags: .admin) { inv in
            guard let cluster = inv.server.cluster else { throw CommandError("ERR this node is not in a cluster") }
            guard inv.arguments.count == 3 else {
                inv.integer(reply: Int(cluster.epoch))
                return .done
            }
            guard let floor = Version(text: inv.string(2)) else { throw CommandError("ERR invalid flush version") }
            cluster.adoptFloor(floor)
            inv.out.writeRESPArrayHeader(2)
            inv.integer(reply: Int(cluster.epoch))
            inv.bulk(inv.store.flushFloor.text)
            return .done
        },

        // STRATA.MEMBERSHIP text: a peer's membership, adopted if newer; the reply is the epoch after.
        CommandSpec("strata.membership", arity: 2, flags: .admin) { inv in
            guard inv.session.state.withLock({ $0.isPeer }), let cluster = inv.server.cluster else {
                throw CommandError("ERR STRATA.MEMBERSHIP is for cluster peers")
            }
            guard let membership = Membership(encoded: inv.string(1)) else { throw CommandError("ERR malformed membership") }
            cluster.cluster.adopt(membership)
            inv.integer(reply: Int(cluster.epoch))
            return .done
        },

        // STRATA.APPLY key record [key record ...]: records streamed to their owner (join, leave,
        // clean-up); each is applied if newer. The reply is how many were.
        CommandSpec("strata.apply", arity: -3, flags: [.local]) { inv in
            guard inv.session.state.withLock({ $0.isPeer }) else { throw CommandError("ERR STRATA.APPLY is for cluster peers") }
            guard inv.arguments.count % 2 == 1 else { throw CommandError.arity("strata.apply") }
            let pairs = stride(from: 1, to: inv.arguments.count, by: 2).map { (inv.bytes($0), inv.bytes($0 + 1)) }
            let store = inv.store
            return try inv.offload { out, _ in
                var applied = 0
                for (key, record) in pairs where try store.applyRecord(key, record: record) { applied += 1 }
                out.writeRESPInteger(applied)
            }
        },

        // STRATA.SYNC node cursor count [bits bitmap]: a batch of the records `node` owns, for
        // repair; with `bits` and `bitmap`, only those in the marked hash ranges (anti-entropy).
        CommandSpec("strata.sync", arity: -4, flags: .admin) { inv in
            guard inv.session.state.withLock({ $0.isPeer }), let cluster = inv.server.cluster else {
                throw CommandError("ERR STRATA.SYNC is for cluster peers")
            }
            guard inv.arguments.count == 4 || inv.arguments.count == 6 else { throw CommandError.arity("strata.sync") }
            guard let cursor = TieredStore.RecordCursor(bytes: inv.bytes(2)) else { throw CommandError("ERR invalid cursor") }
            let node = NodeID(inv.string(1))
            let count = try inv.integer(3)
            var ranges: (bits: Int, bitmap: [UInt8])? = nil
            if inv.arguments.count == 6 {
                let bits = try inv.integer(4)
                let bitmap = inv.bytes(5)
                guard (1...16).contains(bits), bitmap.count == (1 << bits + 7) / 8 else { throw CommandError("ERR invalid range filter") }
                ranges = (bits, bitmap)
            }
            let filter = ranges
            return try inv.offload { out, _ in
                let (owned, next) = try cluster.records(
                    ownedBy: node, from: cursor, limit: min(max(count, 1), 10_000), ranges: filter)
                out.writeRESPArrayHeader(2)
                out.writeRESPBulk(next?.bytes ?? [])
                out.writeRESPArrayHeader(owned.count * 2)
                for pair in owned {
                    out.writeRESPBulk(pair.key)
                    out.writeRESPBulk(pair.record)
                }
            }
        },

        // STRATA.DIGEST node bits: per hash range, a digest of the keys this node and `node` both
        // own (8 bytes per range, big-endian), for anti-entropy.
        CommandSpec("strata.digest", arity: 3, flags: .admin) { inv in
            guard inv.session.state.withLock({ $0.isPeer }), let cluster = inv.server.cluster else {
                throw CommandError("ERR STRATA.DIGEST is for cluster peers")
            }
            let node = NodeID(inv.string(1))
            let bits = try inv.integer(2)
            guard (1...16).contains(bits) else { throw CommandError("ERR digest bits must be 1 to 16") }
            return try inv.offload { out, _ in
                let digests = try cluster.rangeDigests(sharedWith: node, bits: bits)
                var payload = ByteBuffer()
                payload.reserveCapacity(digests.count * 8)
                for digest in digests { payload.writeInteger(digest) }
                out.writeRESPBulk(payload)
            }
        },

        // STRATA.CLUSTER [NODES | OWNERS key | EPOCH | MEMBERSHIP | REPAIR | HTTPPORT | JOIN id host:port [http-port] | LEAVE [id] |
        // FORGET id]
        CommandSpec("strata.cluster", arity: -1, flags: .admin) { inv in
            let sub = inv.arguments.count > 1 ? inv.upper(1) : "NODES"
            guard let cluster = inv.server.cluster else {
                switch sub {
                case "OWNERS":
                    inv.out.writeRESPArrayHeader(1)
                    inv.bulk("self")
                case "EPOCH": inv.integer(reply: 0)
                case "NODES": inv.out.writeRESPArrayHeader(0)
                default: throw CommandError("ERR this node is not in a cluster (start it with --node-id and --peers or --join)")
                }
                return .done
            }
            switch sub {
            case "NODES":
                let states = cluster.cluster.peerStates
                let membership = cluster.membership
                inv.out.writeRESPArrayHeader(membership.members.count)
                for member in membership.members {
                    let isSelf = member.id == cluster.nodeID
                    let up = isSelf || (states[member.id]?.up ?? false)
                    inv.out.writeRESPMapHeader(6, inv.version)
                    inv.bulk("id")
                    inv.bulk(member.id.name)
                    inv.bulk("address")
                    inv.bulk("\(member.host):\(member.port)")
                    inv.bulk("state")
                    inv.bulk(!up ? "down" : member.state == .normal ? "up" : member.state.rawValue)
                    inv.bulk("membership")
                    inv.bulk(member.state.rawValue)
                    inv.bulk("self")
                    inv.integer(reply: isSelf ? 1 : 0)
                    inv.bulk("epoch")
                    inv.integer(reply: Int(membership.epoch))
                }
            case "OWNERS":
                guard inv.arguments.count == 3 else { throw CommandError.arity("strata.cluster|owners") }
                let owners = cluster.allOwners(of: inv.bytes(2))
                inv.out.writeRESPArrayHeader(owners.count)
                for owner in owners { inv.bulk(owner.name) }
            case "EPOCH":
                inv.integer(reply: Int(cluster.epoch))
            case "MEMBERSHIP":
                inv.bulk(cluster.membership.encoded)
            case "REPAIR":
                // Anti-entropy with every live peer now, instead of at the next interval.
                let future = inv.eventLoop.makeFutureWithTask { await cluster.repairNow() }
                return .deferred(Commands.reply(future) { out, applied in out.writeRESPInteger(applied) })
            case "HTTPPORT":
                // Asked by peers that list this node's /metrics address for service discovery.
                inv.integer(reply: inv.server.httpPort)
            case "JOIN":
                guard inv.arguments.count == 4 || inv.arguments.count == 5 else { throw CommandError.arity("strata.cluster|join") }
                guard Membership.isValidName(inv.string(2)) else { throw CommandError("ERR '\(inv.string(2))' is not a node id") }
                guard let address = ClusterConfiguration.parseAddress(inv.string(3)) else {
                    throw CommandError("ERR '\(inv.string(3))' is not host:port")
                }
                var httpPort: Int?
                if inv.arguments.count == 5 {
                    guard let port = Int(inv.string(4)), (1...65535).contains(port) else {
                        throw CommandError("ERR '\(inv.string(4))' is not an HTTP port")
                    }
                    httpPort = port
                }
                let future = cluster.admit(
                    NodeID(inv.string(2)), host: address.host, port: address.port, httpPort: httpPort, eventLoop: inv.eventLoop)
                return .deferred(Commands.reply(future) { out, membership in out.writeRESPBulk(membership.encoded) })
            case "LEAVE":
                guard inv.arguments.count <= 3 else { throw CommandError.arity("strata.cluster|leave") }
                let id = inv.arguments.count == 3 ? NodeID(inv.string(2)) : cluster.nodeID
                let future = cluster.startLeave(id, eventLoop: inv.eventLoop)
                return .deferred(Commands.reply(future) { out, _ in out.writeStaticString("+OK\r\n") })
            case "FORGET":
                guard inv.arguments.count == 3 else { throw CommandError.arity("strata.cluster|forget") }
                let future = cluster.forget(NodeID(inv.string(2)), eventLoop: inv.eventLoop)
                return .deferred(Commands.reply(future) { out, _ in out.writeStaticString("+OK\r\n") })
            default:
                throw CommandError(
                    "ERR unknown subcommand '\(inv.string(1))'. Try STRATA.CLUSTER NODES, OWNERS key, EPOCH, REPAIR, JOIN id host:port, LEAVE [id] or FORGET id.")
            }
            return .done
        },
    ]

    /// The reply of a command that finishes later: `write` on success, the error's text otherwise.
    static func reply<T>(_ future: EventLoopFuture<T>, _ write: @escaping @Sendable (inout ByteBuffer, T) -> Void)
        -> EventLoopFuture<Reply>
    {
        future.map { value in
            var out = ByteBuffer()
            write(&out, value)
            return Reply(out)
        }
    }
}
