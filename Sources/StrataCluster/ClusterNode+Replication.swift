import NIOCore
import RESP
import StrataStore

/// Replication: the coordinator of a write sends the resulting record to the other live owners
/// (`STRATA.APPLY`, batched per peer; last writer wins) and replies once `--write-quorum` nodes
/// have it.
extension ClusterNode {
    /// Sends the current records of `keys` to their other live owners. Completes once
    /// `--write-quorum` nodes (this one included) have them: at once for a quorum of 1, the
    /// copies then travel in the background. Fails if the quorum cannot be reached.
    public func replicate(_ keys: [[UInt8]], eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        replicateCounting(keys, eventLoop: eventLoop).quorum
    }

    /// `replicate`, and also (`acknowledged`) the number of other owners that acknowledged every
    /// key's record: the fewest over the keys, once every copy has answered (WAIT's count).
    public func replicateCounting(_ keys: [[UInt8]], eventLoop: any EventLoop)
        -> (quorum: EventLoopFuture<Void>, acknowledged: EventLoopFuture<Int>)
    {
        guard cluster.isClustered else { return (eventLoop.makeSucceededVoidFuture(), eventLoop.makeSucceededFuture(0)) }
        var counts: [EventLoopFuture<Int>] = []
        let quorum = cluster.configuration.writeQuorum
        let store = self.store
        let metrics = self.metrics
        let perKey: [EventLoopFuture<Void>] = keys.map { key in
            let others = cluster.allOwners(of: key).filter { $0 != cluster.nodeID }
            let targets = others.filter { cluster.isLive($0) }
            for down in others where !cluster.isLive(down) { hint(key, for: down) }
            guard !targets.isEmpty else {
                counts.append(eventLoop.makeSucceededFuture(0))
                return quorum <= 1 ? eventLoop.makeSucceededVoidFuture()
                    : eventLoop.makeFailedFuture(ClusterError("ERR write quorum of \(quorum) not reached (1 node has the write)"))
            }
            // Just written, the record is almost always still in the write queue: no disk read.
            let record = store.exportQueuedRecord(key).map { eventLoop.makeSucceededFuture(Optional($0)) }
                ?? pool.runIfActive(eventLoop: eventLoop) { store.exportRecord(key) }
            let started = NIODeadline.now()
            let acks = targets.map { target -> EventLoopFuture<Bool> in
                record.flatMap { record -> EventLoopFuture<Bool> in
                    guard let record else { return eventLoop.makeSucceededFuture(false) }
                    return self.sendReplica(key: key, record: record, to: target, eventLoop: eventLoop)
                }.map { ok in
                    if ok {
                        metrics.replicated.increment(by: 1)
                        metrics.replicationLag.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
                    } else {
                        metrics.replicationFailures.increment(by: 1)
                        self.hint(key, for: target)  // handed off when the target answers again
                    }
                    return ok
                }
            }
            counts.append(EventLoopFuture.whenAllSucceed(acks, on: eventLoop).map { $0.filter { $0 }.count })
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
                        promise.fail(ClusterError("ERR write quorum of \(quorum) not reached (\(ok + 1) nodes have the write)"))
                    }
                }
            }
            return promise.futureResult
        }
        let acknowledged = EventLoopFuture.whenAllSucceed(counts, on: eventLoop).map { $0.min() ?? 0 }
        return (EventLoopFuture.andAllSucceed(perKey, on: eventLoop), acknowledged)
    }
}
