import NIOCore
import Prometheus
import RESP
import StrataCluster
import StrataStore

/// Bringing replicas back in line after a node missed writes.
///
/// - Hinted handoff: a write whose owner is down is remembered (the key, per owner) by the node
///   that coordinated it; when that owner answers again, the keys' current records are sent to it.
/// - Repair: a node that starts pulls, from every peer, the records of every key it owns
///   (`STRATA.SYNC`, a scan of the peer's store) and keeps whichever version is newest; and every
///   `repairInterval` it does the same with each peer in turn, which catches anything else.
/// Hints are kept in memory and in `HintFile`s, so a coordinator that restarts still hands off.
/// A full scan per repair is simple and correct; range digests, so that only differing ranges
///   travel, are the next step.
extension Server {
    static let repairInterval: TimeAmount = .minutes(5)
    static let syncBatch = 500

    /// Remembers that `node` missed the write of `key`.
    func hint(_ key: [UInt8], for node: NodeID) {
        let file = hintFile
        hints.withLock { hints in
            var keys = hints[node.name] ?? []
            // Beyond a million keys per peer, repair catches up instead.
            if keys.count < 1_000_000 && keys.insert(key).inserted { file.append(key, for: node.name) }
            hints[node.name] = keys
        }
    }

    var pendingHints: Int { hints.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Starts handoff on peer recovery, the repair at start, and the periodic repair.
    public func startClusterRepair(group: any EventLoopGroup) {
        guard let cluster, cluster.isClustered else { return }
        let saved = hintFile.load()
        hints.withLock { hints in
            for (peer, keys) in saved { hints[peer, default: []].formUnion(keys) }
        }
        if !saved.isEmpty {
            logger.info("loaded hints from disk", metadata: ["keys": "\(saved.values.reduce(0) { $0 + $1.count })"])
        }
        cluster.onPeerUp { [weak self] peer in
            guard let self else { return }
            _ = self.handOff(to: peer, eventLoop: group.next())
        }
        for peer in cluster.peerIDs {
            repairWithRetries(from: peer, attempts: 30, eventLoop: group.next())
        }
        _ = group.next().scheduleRepeatedTask(initialDelay: Server.repairInterval, delay: Server.repairInterval) {
            [weak self] _ in
            guard let self else { return }
            for peer in cluster.peerIDs where cluster.isLive(peer) {
                _ = self.pull(from: peer, eventLoop: group.next())
            }
        }
    }

    private func repairWithRetries(from peer: NodeID, attempts: Int, eventLoop: any EventLoop) {
        pull(from: peer, eventLoop: eventLoop).whenComplete { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let applied):
                self.logger.info("repaired from peer", metadata: ["peer": "\(peer)", "records applied": "\(applied)"])
            case .failure where attempts > 1:
                eventLoop.scheduleTask(in: .seconds(2)) { self.repairWithRetries(from: peer, attempts: attempts - 1, eventLoop: eventLoop) }
            case .failure(let error):
                self.logger.warning("could not repair from peer", metadata: ["peer": "\(peer)", "error": "\(error)"])
            }
        }
    }

    /// Pulls the records this node owns from `peer`, applying the newer ones; returns how many.
    func pull(
        from peer: NodeID, cursor: [UInt8] = RecordCursorBytes.start, applied: Int = 0, counter: Prometheus.Counter? = nil,
        eventLoop: any EventLoop
    ) -> EventLoopFuture<Int> {
        guard let cluster else { return eventLoop.makeSucceededFuture(0) }
        let store = self.store
        let counter = counter ?? metrics.repaired
        let request = [
            ByteBuffer(string: "STRATA.SYNC"), ByteBuffer(string: cluster.nodeID.name), ByteBuffer(bytes: cursor),
            ByteBuffer(string: String(Server.syncBatch)),
        ]
        return cluster.send(request, to: peer, timeout: Server.streamTimeout).hop(to: eventLoop).flatMap { reply in
            guard reply.kind == .array, reply.elements.count == 2, let next = reply.elements[0].payload else {
                return eventLoop.makeFailedFuture(CommandError("unexpected STRATA.SYNC reply: \(reply.string ?? "?")"))
            }
            let items = reply.elements[1].elements.compactMap { $0.payload.map { Array($0.readableBytesView) } }
            let nextCursor = Array(next.readableBytesView)
            return self.diskPool.runIfActive(eventLoop: eventLoop) { () -> Int in
                var count = 0
                for i in stride(from: 0, to: items.count - 1, by: 2) where (try? store.applyRecord(items[i], record: items[i + 1])) == true {
                    count += 1
                }
                return count
            }.flatMap { count in
                counter.increment(by: Int64(count))
                if nextCursor.isEmpty { return eventLoop.makeSucceededFuture(applied + count) }
                return self.pull(from: peer, cursor: nextCursor, applied: applied + count, counter: counter, eventLoop: eventLoop)
            }
        }
    }

    /// Sends the current records of the keys `peer` missed while it was down.
    func handOff(to peer: NodeID, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let cluster else { return eventLoop.makeSucceededVoidFuture() }
        let keys = hints.withLock { $0.removeValue(forKey: peer.name) ?? [] }
        guard !keys.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        let file = hintFile
        logger.info("handing off missed writes", metadata: ["peer": "\(peer)", "keys": "\(keys.count)"])
        let store = self.store
        let sends = keys.map { key -> EventLoopFuture<Void> in
            diskPool.runIfActive(eventLoop: eventLoop) { store.exportRecord(key) }.flatMap { record in
                guard let record else { return eventLoop.makeSucceededVoidFuture() }
                return cluster.send(
                    [ByteBuffer(string: "STRATA.REPLICATE"), ByteBuffer(bytes: key), ByteBuffer(bytes: record)], to: peer
                ).hop(to: eventLoop).map { reply in
                    guard reply.kind == .integer else { return self.hint(key, for: peer) }
                    self.metrics.handedOff.increment()
                    // A stand-in (this node held the key only because every owner was down)
                    // drops its copy once no owner still waits for a hand-off of it.
                    let owners = cluster.allOwners(of: key)
                    let waiting = self.hints.withLock { hints in owners.contains { hints[$0.name]?.contains(key) ?? false } }
                    if !owners.contains(cluster.nodeID) && !waiting {
                        _ = self.diskPool.runIfActive(eventLoop: eventLoop) { try? store.discard(key) }
                    }
                }.recover { _ in self.hint(key, for: peer) }
            }
        }
        return EventLoopFuture.andAllComplete(sends, on: eventLoop).always { _ in
            // What failed was hinted again (in memory); the file now holds exactly that.
            self.hints.withLock { hints in file.rewrite(hints[peer.name] ?? [], for: peer.name) }
        }
    }
}

/// The cursor bytes a repair starts from (`TieredStore.RecordCursor.start`).
enum RecordCursorBytes {
    static var start: [UInt8] { TieredStore.RecordCursor.start.bytes }
}
