import NIOCore
import StrataStore

/// Sends copies of writes to other owners in batches: the records queued for one peer while a
/// batch is on its way go out together as one `STRATA.APPLY`, which the peer applies in one
/// trip to its disk threads. Under load this turns one request (and one thread hand-off on each
/// side) per write into one per batch; with little load a batch is a single record and leaves
/// at once.
///
/// A batch's reply is the number of records the peer took as newer; any integer reply means
/// the peer now holds each record or a newer version (last writer wins), so it acknowledges
/// every record in the batch.
final class ReplicaBatcher: Sendable {
    private struct Queue {
        var records: [(key: [UInt8], record: [UInt8], done: EventLoopPromise<Bool>)] = []
        var sending = false
    }

    /// Each peer's queue and whether a batch to it is on its way.
    private let queues = Locked<[NodeID: Queue]>([:])
    /// Records queued or sent and not yet acknowledged, over all peers.
    private let unacknowledged = Locked(0)
    /// Most records in one batch.
    static let maxBatch = 256

    /// Records queued or sent and not yet acknowledged.
    var inFlight: Int { unacknowledged.withLock { $0 } }

    private func inFlight(_ delta: Int) {
        unacknowledged.withLock { $0 += delta }
    }

    /// Queues `record` for `peer`; succeeds with whether the peer acknowledged it.
    func send(key: [UInt8], record: [UInt8], to peer: NodeID, cluster: Cluster, eventLoop: any EventLoop)
        -> EventLoopFuture<Bool>
    {
        let promise = eventLoop.makePromise(of: Bool.self)
        inFlight(1)
        let start = queues.withLock { queues -> Bool in
            queues[peer, default: Queue()].records.append((key, record, promise))
            guard !queues[peer]!.sending else { return false }
            queues[peer]!.sending = true
            return true
        }
        if start { flush(peer, cluster: cluster) }
        return promise.futureResult
    }

    /// Sends what is queued for `peer`, then again while more has queued meanwhile.
    private func flush(_ peer: NodeID, cluster: Cluster) {
        let batch = queues.withLock { queues -> [(key: [UInt8], record: [UInt8], done: EventLoopPromise<Bool>)] in
            guard var queue = queues[peer] else { return [] }
            let taken = Array(queue.records.prefix(ReplicaBatcher.maxBatch))
            queue.records.removeFirst(taken.count)
            if taken.isEmpty { queue.sending = false }
            queues[peer] = queue
            return taken
        }
        guard !batch.isEmpty else { return }
        var arguments = [ByteBuffer(string: "STRATA.APPLY")]
        arguments.reserveCapacity(1 + batch.count * 2)
        for item in batch {
            arguments.append(ByteBuffer(bytes: item.key))
            arguments.append(ByteBuffer(bytes: item.record))
        }
        cluster.send(arguments, to: peer).whenComplete { result in
            var ok = false
            if case .success(let reply) = result, reply.kind == .integer { ok = true }
            self.inFlight(-batch.count)
            for item in batch { item.done.succeed(ok) }
            self.flush(peer, cluster: cluster)
        }
    }
}

extension ClusterNode {
    /// Sends a copy of a write to `peer`, batched with others for it; succeeds with whether the
    /// peer acknowledged it.
    func sendReplica(key: [UInt8], record: [UInt8], to peer: NodeID, eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        return replicaBatcher.send(key: key, record: record, to: peer, cluster: cluster, eventLoop: eventLoop)
    }
}
