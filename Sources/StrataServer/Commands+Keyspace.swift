import NIOCore
import RESP
import StrataCluster
import StrataStore

/// Commands over the whole keyspace: DBSIZE, KEYS, SCAN, RANDOMKEY, FLUSHALL and FLUSHDB, and the
/// peer commands a cluster answers them with.
///
/// On a single node they read the store. In a cluster they answer for the whole cluster, from
/// whichever node is asked: counts and listings gather each live node's share (the keys it
/// coordinates in one view of who is up, so each key is counted once), SCAN walks the nodes one
/// after another, and a flush is a version every node applies (`ClusterNode.flushCluster`).
extension Commands {
    static let keyspace: [CommandSpec] = [
        CommandSpec("dbsize", arity: 1) { inv in
            let store = inv.store
            guard let cluster = inv.server.clusterIfClustered else {
                return try inv.offload { out, _ in out.writeRESPInteger(try store.count()) }
            }
            return .deferred(
                clusterCounts(cluster, eventLoop: inv.eventLoop).map { counts in
                    var out = ByteBuffer()
                    out.writeRESPInteger(counts.reduce(0) { $0 + $1.keys })
                    return Reply(out)
                })
        },

        CommandSpec("keys", arity: 2) { inv in
            let pattern = inv.bytes(1)
            guard let cluster = inv.server.clusterIfClustered else {
                let store = inv.store
                return try inv.offload { out, _ in
                    var found: [[UInt8]] = []
                    var cursor: [UInt8]? = nil
                    repeat {
                        let (keys, next) = try store.scan(cursor: cursor, count: 10_000)
                        found += keys.filter { GlobPattern.matches(pattern, $0) }
                        cursor = next
                    } while cursor != nil
                    out.writeRESPArrayHeader(found.count)
                    for key in found { out.writeRESPBulk(key) }
                }
            }
            let loop = inv.eventLoop
            let lists = cluster.retrying(eventLoop: loop) { view in
                cluster.gather(
                    view, request: peerRequest("KEYS", view.encoded, pattern), eventLoop: loop,
                    local: { try localKeys(cluster, .coordinated(view), matching: pattern) },
                    parse: { reply in reply.elements.compactMap { $0.payload.map { Array($0.readableBytesView) } } })
            }
            return .deferred(
                lists.map { lists in
                    var out = ByteBuffer()
                    out.writeRESPArrayHeader(lists.reduce(0) { $0 + $1.count })
                    for list in lists { for key in list { out.writeRESPBulk(key) } }
                    return Reply(out)
                })
        },

        CommandSpec("scan", arity: -2) { inv in
            guard let cursor = UInt64(inv.string(1)) else { throw CommandError("ERR invalid cursor") }
            var pattern: [UInt8]? = nil
            var count = 10
            var typeFilter: String? = nil
            var i = 2
            while i < inv.arguments.count {
                guard i + 1 < inv.arguments.count else { throw CommandError.syntax }
                switch inv.upper(i) {
                case "MATCH": pattern = inv.bytes(i + 1)
                case "COUNT":
                    count = try inv.integer(i + 1)
                    guard count >= 1 else { throw CommandError.syntax }
                case "TYPE": typeFilter = inv.string(i + 1).lowercased()
                default: throw CommandError.syntax
                }
                i += 2
            }
            // A type name Redis does not know matches nothing (the scan still runs, as in 7.0).
            let kindFilter: ValueKind?? = typeFilter.map { name in ValueKind.allCases.first { $0.name == name } }
            // A cluster scan does not see types yet: only strings, or everything, pass there.
            let onlyNone = typeFilter.map { $0 != "string" } ?? false
            let limit = min(count, 100_000)
            if let cluster = inv.server.clusterIfClustered {
                return try clusterScan(inv, cluster, cursor: cursor, count: limit, match: pattern, onlyNone: onlyNone)
            }
            var start: [UInt8]? = nil
            if cursor != 0 {
                guard case .local(let position)? = inv.server.cursors.position(cursor) else {
                    throw CommandError("ERR invalid cursor")
                }
                start = position
            }
            let (store, cursors, from, match) = (inv.store, inv.server.cursors, start, pattern)
            return try inv.offload { out, _ in
                let (scanned, next) = try store.scanWithExpiry(cursor: from, count: limit)
                let keys = scanned.compactMap { entry -> [UInt8]? in
                    if case .some(let wanted) = kindFilter, entry.kind != wanted { return nil }
                    return entry.key
                }
                let matching = match.map { p in keys.filter { GlobPattern.matches(p, $0) } } ?? keys
                writeScanReply(&out, cursor: next.map { cursors.make(.local($0)) } ?? 0, keys: matching)
            }
        },

        CommandSpec("randomkey", arity: 1) { inv in
            let store = inv.store
            guard let cluster = inv.server.clusterIfClustered else {
                return try inv.offload { out, version in
                    if let key = try store.randomKey() { out.writeRESPBulk(key) } else { out.writeRESPNull(version) }
                }
            }
            // A random live node's random key; the next node if it holds none.
            let version = inv.version
            let nodes = cluster.keyspaceView.live.shuffled()
            return .deferred(
                randomKey(cluster, from: nodes, eventLoop: inv.eventLoop).map { key in
                    var out = ByteBuffer()
                    if let key { out.writeRESPBulk(key) } else { out.writeRESPNull(version) }
                    return Reply(out)
                })
        },

        flushCommand("flushall"),
        flushCommand("flushdb"),

        // STRATA.FLUSH floor: a peer's flush, applied if newer; the reply is 1 if it was.
        CommandSpec("strata.flush", arity: 2, flags: .admin) { inv in
            guard inv.session.state.withLock({ $0.isPeer }) else { throw CommandError("ERR STRATA.FLUSH is for cluster peers") }
            guard let floor = Version(text: inv.string(1)) else { throw CommandError("ERR invalid flush version") }
            let store = inv.store
            return try inv.offload { out, _ in out.writeRESPInteger(store.flush(upTo: floor) == nil ? 0 : 1) }
        },

        // STRATA.KEYSPACE COUNT filter | KEYS filter pattern | SCAN filter position count [pattern] | RANDOM:
        // this node's share of a cluster-wide command. `filter` is a view (`epoch:node,...`: the
        // keys this node coordinates in it) or `*` (every key it holds).
        CommandSpec("strata.keyspace", arity: -2, flags: .admin) { inv in
            guard inv.session.state.withLock({ $0.isPeer }), let cluster = inv.server.cluster else {
                throw CommandError("ERR STRATA.KEYSPACE is for cluster peers")
            }
            let sub = inv.upper(1)
            if sub == "RANDOM" {
                let store = inv.store
                return try inv.offload { out, version in
                    if let key = try store.randomKey() { out.writeRESPBulk(key) } else { out.writeRESPNull(version) }
                }
            }
            guard inv.arguments.count >= 3 else { throw CommandError.arity("strata.keyspace") }
            let filter: KeyFilter
            if inv.string(2) == "*" {
                filter = .all
            } else if let view = KeyspaceView(encoded: inv.string(2)) {
                filter = .coordinated(view)
            } else {
                throw CommandError("ERR invalid keyspace view")
            }
            switch sub {
            case "COUNT":
                return try inv.offload { out, _ in
                    let (keys, expires) = try cluster.countKeys(filter)
                    out.writeRESPArrayHeader(2)
                    out.writeRESPInteger(keys)
                    out.writeRESPInteger(expires)
                }
            case "KEYS":
                guard inv.arguments.count == 4 else { throw CommandError.arity("strata.keyspace|keys") }
                let pattern = inv.bytes(3)
                return try inv.offload { out, _ in
                    let keys = try localKeys(cluster, filter, matching: pattern)
                    out.writeRESPArrayHeader(keys.count)
                    for key in keys { out.writeRESPBulk(key) }
                }
            case "SCAN":
                guard inv.arguments.count == 5 || inv.arguments.count == 6 else { throw CommandError.arity("strata.keyspace|scan") }
                let position = inv.bytes(3)
                let count = try inv.integer(4)
                let pattern = inv.arguments.count == 6 ? inv.bytes(5) : nil
                return try inv.offload { out, _ in
                    let (keys, next) = try cluster.keys(filter, after: position.isEmpty ? nil : position, count: max(1, count))
                    let matching = keys.map(\.key).filter { key in pattern.map { GlobPattern.matches($0, key) } ?? true }
                    out.writeRESPArrayHeader(2)
                    out.writeRESPBulk(next ?? [])
                    out.writeRESPArrayHeader(matching.count)
                    for key in matching { out.writeRESPBulk(key) }
                }
            default:
                throw CommandError("ERR unknown subcommand '\(inv.string(1))' of STRATA.KEYSPACE")
            }
        },
    ]

    static func flushCommand(_ name: String) -> CommandSpec {
        CommandSpec(name, arity: -1, flags: .write) { inv in
            if inv.arguments.count > 2 { throw CommandError.syntax }
            if inv.arguments.count == 2, !["ASYNC", "SYNC"].contains(inv.upper(1)) { throw CommandError.syntax }
            guard let cluster = inv.server.clusterIfClustered else {
                inv.store.flush()
                inv.ok()
                return .done
            }
            return .deferred(cluster.flushCluster(eventLoop: inv.eventLoop).map { _ in .ok })
        }
    }

    static func writeScanReply(_ out: inout ByteBuffer, cursor: UInt64, keys: [[UInt8]]) {
        out.writeRESPArrayHeader(2)
        out.writeRESPBulk(String(cursor))
        out.writeRESPArrayHeader(keys.count)
        for key in keys { out.writeRESPBulk(key) }
    }

    static func peerRequest(_ sub: String, _ filter: String, _ rest: [UInt8]...) -> [ByteBuffer] {
        [ByteBuffer(string: "STRATA.KEYSPACE"), ByteBuffer(string: sub), ByteBuffer(string: filter)]
            + rest.map { ByteBuffer(bytes: $0) }
    }

    static func localKeys(_ cluster: ClusterNode, _ filter: KeyFilter, matching pattern: [UInt8]) throws -> [[UInt8]] {
        var found: [[UInt8]] = []
        var position: [UInt8]? = nil
        repeat {
            let (keys, next) = try cluster.keys(filter, after: position, count: 10_000)
            found += keys.map(\.key).filter { GlobPattern.matches(pattern, $0) }
            position = next
        } while position != nil
        return found
    }

    /// Every live node's count of the keys it coordinates (this node's first), in one view.
    static func clusterCounts(_ cluster: ClusterNode, eventLoop: any EventLoop) -> EventLoopFuture<[(keys: Int, expires: Int)]> {
        cluster.retrying(eventLoop: eventLoop) { view in
            cluster.gather(
                view, request: peerRequest("COUNT", view.encoded), eventLoop: eventLoop,
                local: { try cluster.countKeys(.coordinated(view)) },
                parse: { reply in
                    guard reply.elements.count == 2, let keys = reply.elements[0].integer, let expires = reply.elements[1].integer else {
                        throw ClusterError("ERR malformed count from a peer")
                    }
                    return (keys, expires)
                })
        }
    }

    static func randomKey(_ cluster: ClusterNode, from nodes: [NodeID], eventLoop: any EventLoop) -> EventLoopFuture<[UInt8]?> {
        guard let node = nodes.first else { return eventLoop.makeSucceededFuture(nil) }
        let rest = Array(nodes.dropFirst())
        let answer: EventLoopFuture<[UInt8]?>
        if node == cluster.nodeID {
            let store = cluster.store
            answer = cluster.pool.runIfActive(eventLoop: eventLoop) { try store.randomKey() }
        } else {
            answer = cluster.cluster.send([ByteBuffer(string: "STRATA.KEYSPACE"), ByteBuffer(string: "RANDOM")], to: node)
                .hop(to: eventLoop).map { reply in reply.kind == .bulkString ? reply.payload.map { Array($0.readableBytesView) } : nil }
        }
        return answer.flatMap { key in
            key.map { eventLoop.makeSucceededFuture($0) } ?? randomKey(cluster, from: rest, eventLoop: eventLoop)
        }.flatMapError { _ in randomKey(cluster, from: rest, eventLoop: eventLoop) }
    }

    /// One step of a cluster-wide SCAN (see `ClusterScan`).
    static func clusterScan(
        _ inv: Invocation, _ cluster: ClusterNode, cursor: UInt64, count: Int, match: [UInt8]?, onlyNone: Bool
    ) throws -> Outcome {
        let myTag = ScanCursors.tag(cluster.nodeID)
        var scan = ClusterScan(view: cluster.keyspaceView)
        if cursor != 0 {
            let tag = cursor >> ScanCursors.idBits
            if tag != myTag {
                // Another node keeps this scan: pass the command on (once; a peer does not).
                guard inv.origin == .client,
                    let keeper = cluster.membership.members.map(\.id).first(where: { ScanCursors.tag($0) == tag })
                else { throw CommandError("ERR invalid cursor") }
                let future = cluster.forward(inv.arguments, to: keeper, resp3: inv.version == .v3).hop(to: inv.eventLoop)
                    .map { Reply(relayed: $0) }
                return .deferred(future)
            }
            guard case .cluster(let kept)? = inv.server.cursors.position(cursor & (1 << ScanCursors.idBits - 1)) else {
                throw CommandError("ERR invalid cursor")
            }
            scan = kept
        }
        let cursors = inv.server.cursors
        let future = scanStep(scan, cluster, count: count, match: match, eventLoop: inv.eventLoop).map { keys, next in
            var out = ByteBuffer()
            let number = next.map { myTag << ScanCursors.idBits | cursors.make(.cluster($0)) } ?? 0
            writeScanReply(&out, cursor: number, keys: onlyNone ? [] : keys)
            return Reply(out)
        }
        return .deferred(future)
    }

    static func scanStep(_ start: ClusterScan, _ cluster: ClusterNode, count: Int, match: [UInt8]?, eventLoop: any EventLoop)
        -> EventLoopFuture<(keys: [[UInt8]], next: ClusterScan?)>
    {
        var scan = start
        let now = cluster.keyspaceView
        if (!scan.all && now != scan.view) || (scan.all && now.epoch != scan.view.epoch) {
            scan = ClusterScan(view: now, all: true)  // coverage starts again: see ClusterScan
        }
        // Coordinated: the view's nodes. Every key: every live member (a joiner holds keys too).
        let candidates = scan.all ? cluster.membership.members.map(\.id).filter { cluster.cluster.isLive($0) }.sorted() : scan.view.live
        guard let node = scan.current ?? candidates.first(where: { !scan.visited.contains($0) }) else {
            return eventLoop.makeSucceededFuture(([], nil))
        }
        let filter: KeyFilter = scan.all ? .all : .coordinated(scan.view)
        let position = scan.position
        let answer: EventLoopFuture<(keys: [[UInt8]], next: [UInt8]?)>
        if node == cluster.nodeID {
            answer = cluster.pool.runIfActive(eventLoop: eventLoop) {
                let (keys, next) = try cluster.keys(filter, after: position, count: count)
                return (keys.map(\.key).filter { key in match.map { GlobPattern.matches($0, key) } ?? true }, next)
            }
        } else {
            var request = peerRequest("SCAN", scan.all ? "*" : scan.view.encoded, position ?? [], Array(String(count).utf8))
            if let match { request.append(ByteBuffer(bytes: match)) }
            answer = cluster.cluster.send(request, to: node, timeout: .seconds(10)).hop(to: eventLoop).flatMapThrowing { reply in
                guard reply.kind == .array, reply.elements.count == 2, let next = reply.elements[0].payload else {
                    throw ClusterError(reply.string ?? "ERR malformed scan reply from \(node)")
                }
                let keys = reply.elements[1].elements.compactMap { $0.payload.map { Array($0.readableBytesView) } }
                return (keys, next.readableBytes == 0 ? nil : Array(next.readableBytesView))
            }
        }
        return answer.map { keys, next in
            var after = scan
            if let next {
                after.current = node
                after.position = next
            } else {
                after.visited.append(node)
                after.current = nil
                after.position = nil
            }
            let more = after.current != nil || candidates.contains { !after.visited.contains($0) }
            return (keys, more ? after : nil)
        }.flatMapError { _ in
            // The node went away or the membership moved mid-step: coverage starts again.
            eventLoop.makeSucceededFuture(([], ClusterScan(view: cluster.keyspaceView, all: true)))
        }
    }
}

extension Server {
    /// The cluster node, if this node has peers (a cluster of one answers like a single node).
    var clusterIfClustered: ClusterNode? {
        guard let cluster, cluster.isClustered else { return nil }
        return cluster
    }
}
