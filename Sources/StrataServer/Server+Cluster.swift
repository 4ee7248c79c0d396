import NIOCore
import RESP
import StrataCluster
import StrataStore

/// Routing and replication: how a node in a cluster runs a command on the keys' owners.
///
/// - A read runs on the key's first live owner (here if that is this node), then the next owner
///   if that one cannot be reached.
/// - A write runs on the key's coordinator (its first live owner), which applies it, then sends
///   the resulting record to the other live owners (`STRATA.APPLY`, batched per peer; last writer wins) and
///   replies once `--write-quorum` nodes have it.
/// - Multi-key commands whose keys live on different nodes are split into single-key commands
///   (MGET, MSET, DEL, UNLINK, EXISTS) and their replies combined.
/// Commands from peers always run where they arrive, so a forwarded command is never forwarded
/// again even if two nodes briefly disagree about who is up.
extension Server {
    enum Route {
        /// Run here; `replicate`: then send the written keys to the other owners.
        case local(replicate: Bool)
        /// The reply (RESP bytes) comes from elsewhere.
        case remote(EventLoopFuture<ByteBuffer>)
    }

    func route(_ arguments: [ByteBuffer], spec: CommandSpec, session: ClientSession, eventLoop: any EventLoop) -> Route {
        guard let cluster, cluster.isClustered, spec.routes else { return .local(replicate: false) }
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
        if keys.count == 1 || Set(ownerLists.map { $0.first }).count == 1 {
            guard let owners = ownerLists.first, !owners.isEmpty else {
                let message =
                    cluster.membership.member(me)?.state == .joining && cluster.ring.nodes.isEmpty
                    ? "ERR this node is waiting to be admitted to the cluster; use another node" : "ERR no live owner of this key in the cluster"
                return .remote(eventLoop.makeSucceededFuture(Server.errorReply(message)))
            }
            return .remote(forward(arguments, to: owners, session: session, eventLoop: eventLoop))
        }
        return .remote(fanOut(arguments, spec: spec, keys: keys, session: session, eventLoop: eventLoop))
    }

    /// Tries `candidates` in order until one answers; this node runs it locally.
    func forward(_ arguments: [ByteBuffer], to candidates: [NodeID], session: ClientSession, eventLoop: any EventLoop)
        -> EventLoopFuture<ByteBuffer>
    {
        guard let cluster, let first = candidates.first else {
            return eventLoop.makeSucceededFuture(Server.errorReply("ERR no owner of this key could be reached"))
        }
        if first == cluster.nodeID {
            return runLocally(arguments, session: session, eventLoop: eventLoop)
        }
        metrics.forwarded.increment()
        return cluster.forward(arguments, to: first, resp3: session.protocolVersion == .v3).hop(to: eventLoop).map { $0.raw }
            .flatMapError { _ in
            self.forward(arguments, to: Array(candidates.dropFirst()), session: session, eventLoop: eventLoop)
        }
    }

    /// Splits a multi-key command whose keys live on several nodes into single-key commands.
    private func fanOut(
        _ arguments: [ByteBuffer], spec: CommandSpec, keys: [[UInt8]], session: ClientSession, eventLoop: any EventLoop
    ) -> EventLoopFuture<ByteBuffer> {
        func single(_ parts: [ByteBuffer]) -> EventLoopFuture<ByteBuffer> {
            guard let subSpec = commands.lookup(parts[0]) else {
                return eventLoop.makeSucceededFuture(Server.errorReply("ERR internal routing error"))
            }
            switch route(parts, spec: subSpec, session: session, eventLoop: eventLoop) {
            case .local(let replicate):
                return runLocally(parts, session: session, eventLoop: eventLoop, replicate: replicate)
            case .remote(let future):
                return future
            }
        }
        let name = ByteBuffer(string: spec.name.uppercased())
        switch spec.name {
        case "mget":
            let replies = arguments.dropFirst().map { single([ByteBuffer(string: "GET"), $0]) }
            return EventLoopFuture.whenAllSucceed(replies, on: eventLoop).map { replies in
                var out = ByteBuffer()
                out.writeRESPArrayHeader(replies.count)
                for var reply in replies { out.writeBuffer(&reply) }
                return out
            }
        case "del", "unlink", "exists":
            let replies = arguments.dropFirst().map { single([name, $0]) }
            return EventLoopFuture.whenAllSucceed(replies, on: eventLoop).map { replies in
                var total = 0
                for reply in replies {
                    var copy = reply
                    guard let parsed = try? RESPReplyParser().next(&copy), let n = parsed.integer else { return reply }
                    total += n
                }
                var out = ByteBuffer()
                out.writeRESPInteger(total)
                return out
            }
        case "mset":
            let pairs = stride(from: 1, to: arguments.count, by: 2).map {
                single([ByteBuffer(string: "SET"), arguments[$0], arguments[$0 + 1]])
            }
            return EventLoopFuture.whenAllSucceed(pairs, on: eventLoop).map { replies in
                replies.first { $0.getInteger(at: $0.readerIndex, as: UInt8.self) == UInt8(ascii: "-") }
                    ?? ByteBuffer(string: "+OK\r\n")
            }
        default:
            return eventLoop.makeSucceededFuture(
                Server.errorReply("ERR \(spec.name.uppercased()) keys must all belong to one node of the cluster"))
        }
    }

    /// Runs a command on this node (for a split or forwarded part), replicating if it writes.
    func runLocally(_ arguments: [ByteBuffer], session: ClientSession, eventLoop: any EventLoop, replicate: Bool = true)
        -> EventLoopFuture<ByteBuffer>
    {
        guard let spec = commands.lookup(arguments[0]) else {
            return eventLoop.makeSucceededFuture(Server.errorReply("ERR internal routing error"))
        }
        var invocation = Invocation(
            arguments: arguments, name: spec.name, session: session, server: self, eventLoop: eventLoop,
            version: session.protocolVersion, out: ByteBuffer())
        let reply: EventLoopFuture<ByteBuffer>
        do {
            switch try spec.handler(&invocation) {
            case .done: reply = eventLoop.makeSucceededFuture(invocation.out)
            case .deferred(let future): reply = future
            }
        } catch {
            return eventLoop.makeSucceededFuture(Server.errorReply(Server.replyText(for: error)))
        }
        guard replicate && spec.flags.contains(.write) else { return reply }
        let keys = spec.keys(in: arguments).map { Array($0.readableBytesView) }
        return reply.flatMap { bytes in
            Server.isError(bytes) ? eventLoop.makeSucceededFuture(bytes) : self.replicate(keys, eventLoop: eventLoop).map { bytes }
        }
    }

    /// Sends the current records of `keys` to their other live owners. Completes once
    /// `--write-quorum` nodes (this one included) have them: at once for a quorum of 1, the
    /// copies then travel in the background. Fails if the quorum cannot be reached.
    func replicate(_ keys: [[UInt8]], eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let cluster, cluster.isClustered else { return eventLoop.makeSucceededVoidFuture() }
        let quorum = cluster.configuration.writeQuorum
        let store = self.store
        let metrics = self.metrics
        let perKey: [EventLoopFuture<Void>] = keys.map { key in
            let others = cluster.allOwners(of: key).filter { $0 != cluster.nodeID }
            let targets = others.filter { cluster.isLive($0) }
            for down in others where !cluster.isLive(down) { hint(key, for: down) }
            guard !targets.isEmpty else {
                return quorum <= 1 ? eventLoop.makeSucceededVoidFuture()
                    : eventLoop.makeFailedFuture(CommandError("ERR write quorum of \(quorum) not reached (1 node has the write)"))
            }
            // Just written, the record is almost always still in the write queue: no disk read.
            let record = store.exportQueuedRecord(key).map { eventLoop.makeSucceededFuture(Optional($0)) }
                ?? diskPool.runIfActive(eventLoop: eventLoop) { store.exportRecord(key) }
            let started = NIODeadline.now()
            let acks = targets.map { target -> EventLoopFuture<Bool> in
                record.flatMap { record -> EventLoopFuture<Bool> in
                    guard let record else { return eventLoop.makeSucceededFuture(false) }
                    return self.sendReplica(key: key, record: record, to: target, eventLoop: eventLoop)
                }.map { ok in
                    if ok {
                        metrics.replicated.increment()
                        metrics.replicationLag.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
                    } else {
                        metrics.replicationFailures.increment()
                        self.hint(key, for: target)  // handed off when the target answers again
                    }
                    return ok
                }
            }
            guard quorum > 1 else { return eventLoop.makeSucceededVoidFuture() }
            let needed = quorum - 1
            let promise = eventLoop.makePromise(of: Void.self)
            let tally = Locked((done: 0, ok: 0))
            let total = acks.count
            for ack in acks {
                ack.whenSuccess { success in
                    let (done, ok) = tally.withLock { t -> (Int, Int) in
                        t.done += 1
                        if success { t.ok += 1 }
                        return (t.done, t.ok)
                    }
                    if success && ok == needed { promise.succeed(()) }
                    if done == total && ok < needed {
                        promise.fail(CommandError("ERR write quorum of \(quorum) not reached (\(ok + 1) nodes have the write)"))
                    }
                }
            }
            return promise.futureResult
        }
        return EventLoopFuture.andAllSucceed(perKey, on: eventLoop)
    }

    static func errorReply(_ message: String) -> ByteBuffer {
        var out = ByteBuffer()
        out.writeRESPError(message)
        return out
    }

    static func isError(_ reply: ByteBuffer) -> Bool {
        reply.getInteger(at: reply.readerIndex, as: UInt8.self) == UInt8(ascii: "-")
    }
}
