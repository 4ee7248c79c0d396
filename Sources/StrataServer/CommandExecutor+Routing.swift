import NIOCore
import RESP
import StrataCluster
import StrataStore

/// Routing: how a node in a cluster runs a client's command on the keys' owners.
///
/// - A read runs on the key's first live owner (here if that is this node), then the next owner
///   if that one cannot be reached.
/// - A write runs on the key's coordinator (its first live owner), which applies it and sends it
///   on to the other owners (`Server.replicate`).
/// - Multi-key commands whose keys live on different nodes are split into single-key commands
///   (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH) and their replies combined.
/// Commands from peers always run where they arrive, so a forwarded command is never forwarded
/// again even if two nodes briefly disagree about who is up.
extension CommandExecutor {
    enum Route {
        /// Run here; `replicate`: then send the written keys to the other owners.
        case local(replicate: Bool)
        /// The reply comes from elsewhere.
        case remote(EventLoopFuture<Reply>)
    }

    func route(_ arguments: [ByteBuffer], spec: CommandSpec, caller: Caller) -> Route {
        guard let cluster = server.cluster, cluster.isClustered, spec.routes else { return .local(replicate: false) }
        // Key/value commands with a dangling key: let the handler give Redis' arity error.
        if spec.keyStep == 2 && (arguments.count - spec.firstKey) % 2 != 0 { return .local(replicate: false) }
        let keys = spec.keys(in: arguments).map { Array($0.readableBytesView) }
        guard !keys.isEmpty else { return .local(replicate: false) }
        let isWrite = spec.flags.contains(.write)
        let me = cluster.nodeID
        let ownerLists = keys.map { cluster.owners(of: $0) }
        // Reads go to the coordinator too (the first live owner): it applied every acknowledged
        // write, so a client reads its own writes through any node; replicas answer only when
        // the coordinator cannot be reached.
        let allHere = ownerLists.allSatisfy { owners in owners.first == me }
        if allHere { return .local(replicate: isWrite) }
        let sameCoordinator = keys.count == 1 || Set(ownerLists.map { $0.first }).count == 1
        if !sameCoordinator && spec.flags.contains(.oneNode) {
            return .remote(caller.eventLoop.makeSucceededFuture(.error(CommandError.crossSlot.message)))
        }
        if sameCoordinator {
            guard let owners = ownerLists.first, !owners.isEmpty else {
                let message =
                    cluster.isWaitingToJoin
                    ? "ERR this node is waiting to be admitted to the cluster; use another node"
                    : "ERR no live owner of this key in the cluster"
                return .remote(caller.eventLoop.makeSucceededFuture(.error(message)))
            }
            if isWrite, let coordinator = owners.first { caller.session.state.withLock { _ = $0.forwardedWritesTo.insert(coordinator) } }
            return .remote(forward(arguments, to: owners, caller: caller))
        }
        return .remote(fanOut(arguments, spec: spec, caller: caller))
    }

    /// How long a forwarded blocking pop (BLPOP...) may take to answer: its own timeout and 10 s
    /// more, or about a month for 0 (forever); nil for every other command.
    static func blockingWait(_ arguments: [ByteBuffer]) -> TimeAmount? {
        guard let name = arguments.first.map({ String(buffer: $0).lowercased() }), blockingCommands.contains(name),
            arguments.count >= 3
        else { return nil }
        let argument = name.hasSuffix("mpop") ? arguments[1] : arguments[arguments.count - 1]
        guard let seconds = Double(String(buffer: argument)), seconds.isFinite, seconds >= 0 else { return nil }
        // Under 1 ms waits forever too (`blockingTimeout` truncates to whole milliseconds, as Redis).
        if seconds < 0.001 || seconds > 2_592_000 { return .hours(24 * 30) }
        return .milliseconds(Int64(seconds * 1000) + 10_000)
    }

    static let blockingCommands: Set<String> = ["blpop", "brpop", "blmove", "brpoplpush", "blmpop", "bzpopmin", "bzpopmax", "bzmpop"]

    /// Tries `candidates` in order until one answers; this node runs it itself.
    func forward(_ arguments: [ByteBuffer], to candidates: [NodeID], caller: Caller) -> EventLoopFuture<Reply> {
        let eventLoop = caller.eventLoop
        guard let cluster = server.cluster, let first = candidates.first else {
            return eventLoop.makeSucceededFuture(.error("ERR no owner of this key could be reached"))
        }
        if first == cluster.nodeID {
            return run(arguments, caller: caller, placement: .here(replicate: true))
        }
        server.metrics.forwarded.increment()
        let timeout = Self.blockingWait(arguments)
        return cluster.forward(arguments, to: first, resp3: caller.version == .v3, timeout: timeout).hop(to: eventLoop)
            .map { Reply(relayed: $0) }
            .flatMapError { _ in
                self.forward(arguments, to: Array(candidates.dropFirst()), caller: caller)
            }
    }

    /// Splits a multi-key command whose keys live on several nodes into single-key commands.
    private func fanOut(_ arguments: [ByteBuffer], spec: CommandSpec, caller: Caller) -> EventLoopFuture<Reply> {
        let eventLoop = caller.eventLoop
        func single(_ parts: [ByteBuffer]) -> EventLoopFuture<Reply> {
            run(parts, caller: caller, placement: .byOwner)
        }
        let name = ByteBuffer(string: spec.name.uppercased())
        switch spec.name {
        case "mget":
            let replies = arguments.dropFirst().map { single([ByteBuffer(string: "GET"), $0]) }
            return EventLoopFuture.whenAllSucceed(replies, on: eventLoop).map { replies in
                var out = ByteBuffer()
                out.writeRESPArrayHeader(replies.count)
                for reply in replies { out.writeImmutableBuffer(reply.bytes) }
                return Reply(out)
            }
        case "del", "unlink", "exists", "touch":
            let replies = arguments.dropFirst().map { single([name, $0]) }
            return EventLoopFuture.whenAllSucceed(replies, on: eventLoop).map { replies in
                var total = 0
                for reply in replies {
                    guard !reply.isError, let n = reply.integer else { return reply }
                    total += n
                }
                var out = ByteBuffer()
                out.writeRESPInteger(total)
                return Reply(out)
            }
        case "mset":
            let pairs = stride(from: 1, to: arguments.count, by: 2).map {
                single([ByteBuffer(string: "SET"), arguments[$0], arguments[$0 + 1]])
            }
            return EventLoopFuture.whenAllSucceed(pairs, on: eventLoop).map { replies in
                replies.first { $0.isError } ?? .ok
            }
        default:
            return eventLoop.makeSucceededFuture(
                .error("ERR \(spec.name.uppercased()) keys must all belong to one node of the cluster"))
        }
    }
}
