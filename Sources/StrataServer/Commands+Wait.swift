import NIOCore
import RESP
import StrataCluster
import StrataStore

/// WAIT: how many other owners acknowledged the client's writes.
///
/// A write coordinated here remembers its replication's acknowledgement count in the client's
/// session (and node-wide, for writes other nodes forwarded here); a write forwarded to another
/// coordinator remembers that node. WAIT takes the fewest acknowledgements over both: its own
/// latest write's, and each of those coordinators' latest (`STRATA.ACKED`). A single node has no
/// other owners and answers 0 at once, as Redis without replicas does.
extension Commands {
    static let wait: [CommandSpec] = [
        CommandSpec("wait", arity: 3, flags: [.admin, .noScript]) { inv in
            _ = try inv.integer(1)  // numreplicas: validated; every owner is waited for
            guard let timeout = Invocation.parseInteger(inv.arguments[2].readableBytesView) else {
                throw CommandError("ERR timeout is not an integer or out of range")
            }
            guard timeout >= 0 else { throw CommandError("ERR timeout is negative") }
            guard let cluster = inv.server.cluster, cluster.isClustered else {
                inv.integer(reply: 0)
                return .done
            }
            let loop = inv.eventLoop
            let (own, forwarded) = inv.session.state.withLock { ($0.acknowledged, $0.forwardedWritesTo) }
            var counts: [EventLoopFuture<Int>] = own.map { [$0] } ?? []
            for node in forwarded {
                counts.append(
                    cluster.cluster.send([ByteBuffer(string: "STRATA.ACKED")], to: node).map { $0.integer ?? 0 }
                        .recover { _ in 0 })
            }
            guard !counts.isEmpty else {
                inv.integer(reply: cluster.configuration.replicas - 1)
                return .done
            }
            let all = EventLoopFuture.whenAllSucceed(counts, on: loop).map { $0.min() ?? 0 }
            let promise = loop.makePromise(of: Reply.self)
            all.whenSuccess { count in promise.succeed(Self.integerReply(count)) }
            all.whenFailure { _ in promise.succeed(Self.integerReply(0)) }
            if timeout > 0 {
                // Redis answers what it has when the timeout passes; here, none confirmed yet.
                let expiry = loop.scheduleTask(in: .milliseconds(Int64(timeout))) { promise.succeed(Self.integerReply(0)) }
                all.whenComplete { _ in expiry.cancel() }
            }
            return .deferred(promise.futureResult)
        },

        // The acknowledgement count of the latest write this node coordinated (for WAIT on the
        // node a client's writes were forwarded from).
        CommandSpec("strata.acked", arity: 1, flags: .admin) { inv in
            guard let latest = inv.server.lastAcknowledged.withLock({ $0 }) else {
                inv.integer(reply: (inv.server.cluster?.configuration.replicas ?? 1) - 1)
                return .done
            }
            return .deferred(latest.map { Self.integerReply($0) })
        },
    ]

    static func integerReply(_ value: Int) -> Reply {
        var out = ByteBuffer()
        out.writeRESPInteger(value)
        return Reply(out)
    }
}

extension CommandExecutor {
    /// Sends written `keys` to their other owners; remembers the acknowledgements for WAIT.
    func replicateWrites(_ keys: [[UInt8]], caller: Caller) -> EventLoopFuture<Void> {
        guard let cluster = server.cluster else { return caller.eventLoop.makeSucceededVoidFuture() }
        let (quorum, acknowledged) = cluster.replicateCounting(keys, eventLoop: caller.eventLoop)
        if caller.origin == .client { caller.session.state.withLock { $0.acknowledged = acknowledged } }
        server.lastAcknowledged.withLock { $0 = acknowledged }
        return quorum
    }
}
