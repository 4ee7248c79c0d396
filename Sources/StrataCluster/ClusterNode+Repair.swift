import NIOCore
import CoreMetrics
import RESP
import StrataStore

/// Bringing replicas back in line after a node missed writes.
///
/// - Hinted handoff: a write whose owner is down is remembered (the key, per owner) by the node
///   that coordinated it; when that owner answers again, the keys' current records are sent to it.
/// - Anti-entropy: a node that starts, and every `repairInterval` after, compares with each peer
///   the keys they both own, range by range: the hash space is cut into 2^`digestBits` ranges by
///   the top bits of each key's `StableHash`, and each side sends a digest per range (the XOR of
///   a hash of every key and its record's version, `STRATA.DIGEST`). Only the ranges whose
///   digests differ are pulled (`STRATA.SYNC` with a range filter), keeping the newest version
///   of each record. Each node pulls what it is missing; the peer's own repair pulls the rest.
/// Hints are kept in memory and in `HintFile`s, so a coordinator that restarts still hands off.
extension ClusterNode {
    static let repairInterval: Duration = .seconds(5 * 60)
    /// Anti-entropy at start is tried this many times, `retryDelay` apart.
    static let startRepairAttempts = 30
    static let retryDelay: Duration = .seconds(2)
    static let syncBatch = 500
    /// Anti-entropy compares 2^10 = 1024 ranges per pair of nodes.
    static let digestBits = 10

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

    /// Loads saved hints and starts handoff on peer recovery.
    func startClusterRepair(group: any EventLoopGroup) {
        guard cluster.isClustered else { return }
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
    }

    /// Anti-entropy with every live peer each `repairInterval`, until the task is cancelled.
    func runPeriodicRepair() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: ClusterNode.repairInterval)
            } catch {
                return  // cancelled
            }
            for peer in cluster.peerIDs where cluster.isLive(peer) {
                do {
                    _ = try await repair(from: peer)
                } catch {
                    logger.info("periodic anti-entropy failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
                }
            }
        }
    }

    /// Anti-entropy with every live peer now (`STRATA.CLUSTER REPAIR`): the records applied here.
    /// A peer that fails is skipped (logged); the next interval tries it again.
    public func repairNow() async -> Int {
        var applied = 0
        for peer in cluster.peerIDs where cluster.isLive(peer) {
            do {
                applied += try await repair(from: peer)
            } catch {
                logger.info("anti-entropy failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
            }
        }
        return applied
    }

    /// Anti-entropy with `peer` at start: tried every `startRetryDelay` until it works, for about
    /// a minute (the peer may be starting too).
    func repairAtStart(from peer: NodeID) async {
        for attempt in 1...ClusterNode.startRepairAttempts {
            do {
                let applied = try await repair(from: peer)
                logger.info("repaired from peer", metadata: ["peer": "\(peer)", "records applied": "\(applied)"])
                return
            } catch {
                guard attempt < ClusterNode.startRepairAttempts else {
                    logger.warning("could not repair from peer", metadata: ["peer": "\(peer)", "error": "\(error)"])
                    return
                }
                do { try await Task.sleep(for: ClusterNode.retryDelay) } catch { return }
            }
        }
    }

    /// Anti-entropy with `peer`: compares range digests of the keys both own and pulls the
    /// ranges that differ. Returns the number of newer records applied.
    func repair(from peer: NodeID) async throws -> Int {
        let bits = ClusterNode.digestBits
        let me = cluster.nodeID
        let request = [ByteBuffer(string: "STRATA.DIGEST"), ByteBuffer(string: me.name), ByteBuffer(string: String(bits))]
        let reply = try await cluster.send(request, to: peer, timeout: .seconds(60)).get()
        guard let remote = reply.payload, remote.readableBytes == 8 << bits else {
            throw ClusterError("unexpected STRATA.DIGEST reply: \(reply.string ?? "?")")
        }
        let local = try await pool.runIfActive { try self.rangeDigests(sharedWith: peer, bits: bits) }
        var differing = [UInt8](repeating: 0, count: (1 << bits) / 8)
        var count = 0
        for range in 0..<(1 << bits) where remote.getInteger(at: remote.readerIndex + range * 8, as: UInt64.self) != local[range] {
            differing[range / 8] |= 1 << (range % 8)
            count += 1
        }
        metrics.rangesEqual.increment(by: Int64((1 << bits) - count))
        metrics.rangesDiffering.increment(by: Int64(count))
        guard count > 0 else { return 0 }
        logger.info("anti-entropy: ranges differ", metadata: ["peer": "\(peer)", "ranges": "\(count)"])
        return try await pull(from: peer, ranges: (bits, differing))
    }

    /// STRATA.DIGEST's answer (a peer's anti-entropy): per range, the digest of the keys this
    /// node and `peer` both own. Reads the whole disk tier: call it on a disk thread.
    public func rangeDigests(sharedWith peer: NodeID, bits: Int) throws -> [UInt64] {
        let (cluster, me) = (self.cluster, nodeID)
        return try ClusterNode.rangeDigests(of: store, bits: bits) { key in
            let owners = cluster.allOwners(of: key)
            return owners.contains(me) && owners.contains(peer)
        }
    }

    /// STRATA.SYNC's answer (a peer's repair or join): the records `node` owns among the next
    /// `limit` from `cursor`, only those in the marked hash ranges when `ranges` is given.
    public func records(
        ownedBy node: NodeID, from cursor: TieredStore.RecordCursor, limit: Int, ranges: (bits: Int, bitmap: [UInt8])?
    ) throws -> (records: [(key: [UInt8], record: [UInt8])], next: TieredStore.RecordCursor?) {
        let (records, next) = try store.scanRecords(from: cursor, limit: limit)
        let owned = records.filter { pair in
            if let ranges {
                let range = Int(StableHash.hash(pair.key) >> (64 - UInt64(ranges.bits)))
                guard ranges.bitmap[range / 8] & (1 << (range % 8)) != 0 else { return false }
            }
            return cluster.allOwners(of: pair.key).contains(node)
        }
        return (owned.map { (key: $0.key, record: $0.record) }, next)
    }

    /// Per range of the hash space (the top `bits` bits of a key's hash), the XOR of a hash of
    /// each selected key with its record's version. Reads the whole disk tier.
    static func rangeDigests(of store: TieredStore, bits: Int, selecting: ([UInt8]) -> Bool) throws -> [UInt64] {
        var digests = [UInt64](repeating: 0, count: 1 << bits)
        var cursor = TieredStore.RecordCursor.start
        while true {
            let (records, next) = try store.scanRecords(from: cursor, limit: 1000)
            for (key, record) in records where selecting(key) {
                guard let version = TieredStore.version(ofRecord: record) else { continue }
                let hash = StableHash.hash(key)
                digests[Int(hash >> (64 - UInt64(bits)))] ^= ClusterNode.digestEntry(hash, version)
            }
            guard let next else { return digests }
            cursor = next
        }
    }

    /// One range-digest entry: a key's hash mixed with its record's version.
    static func digestEntry(_ keyHash: UInt64, _ version: Version) -> UInt64 {
        var z = keyHash ^ (version.clock &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(version.node) << 32)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Pulls the records this node owns from `peer` (only those in `ranges` when given: the
    /// digest bits and a bitmap of ranges), batch by batch, applying the newer ones; returns how
    /// many. Each batch applied advances `counter` (repaired records unless told otherwise).
    func pull(
        from peer: NodeID, ranges: (bits: Int, bitmap: [UInt8])? = nil, counter: (any CounterHandler)? = nil
    ) async throws -> Int {
        let store = self.store
        let counter = counter ?? metrics.repaired
        var cursor = TieredStore.RecordCursor.start.bytes
        var applied = 0
        while true {
            var request = [
                ByteBuffer(string: "STRATA.SYNC"), ByteBuffer(string: cluster.nodeID.name), ByteBuffer(bytes: cursor),
                ByteBuffer(string: String(ClusterNode.syncBatch)),
            ]
            if let ranges {
                request += [ByteBuffer(string: String(ranges.bits)), ByteBuffer(bytes: ranges.bitmap)]
            }
            let reply = try await cluster.send(request, to: peer, timeout: ClusterNode.streamTimeout).get()
            guard reply.kind == .array, reply.elements.count == 2, let next = reply.elements[0].payload else {
                throw ClusterError("unexpected STRATA.SYNC reply: \(reply.string ?? "?")")
            }
            let items = reply.elements[1].elements.compactMap { $0.payload.map { Array($0.readableBytesView) } }
            let (count, failed, error) = try await pool.runIfActive { () -> (Int, Int, (any Error)?) in
                var (count, failed, lastError): (Int, Int, (any Error)?) = (0, 0, nil)
                for i in stride(from: 0, to: items.count - 1, by: 2) {
                    do {
                        if try store.applyRecord(items[i], record: items[i + 1]) { count += 1 }
                    } catch {
                        (failed, lastError) = (failed + 1, error)  // one bad record does not stop the rest
                    }
                }
                return (count, failed, lastError)
            }
            if failed > 0 {
                logger.warning(
                    "records from a peer could not be applied",
                    metadata: ["peer": "\(peer)", "records": "\(failed)", "error": "\(error.map { "\($0)" } ?? "?")"])
            }
            counter.increment(by: Int64(count))
            applied += count
            cursor = Array(next.readableBytesView)
            if cursor.isEmpty { return applied }
        }
    }

    /// Sends the current records of the keys `peer` missed while it was down.
    func handOff(to peer: NodeID, eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let keys = hints.withLock { $0.removeValue(forKey: peer.name) ?? [] }
        guard !keys.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        let file = hintFile
        logger.info("handing off missed writes", metadata: ["peer": "\(peer)", "keys": "\(keys.count)"])
        let store = self.store
        let sends = keys.map { key -> EventLoopFuture<Void> in
            pool.runIfActive(eventLoop: eventLoop) { store.exportRecord(key) }.flatMap { record in
                guard let record else { return eventLoop.makeSucceededVoidFuture() }
                return self.sendReplica(key: key, record: record, to: peer, eventLoop: eventLoop).map { ok in
                    guard ok else { return self.hint(key, for: peer) }
                    self.metrics.handedOff.increment(by: 1)
                    // A stand-in (this node held the key only because every owner was down)
                    // drops its copy once no owner still waits for a hand-off of it.
                    let owners = self.cluster.allOwners(of: key)
                    let waiting = self.hints.withLock { hints in owners.contains { hints[$0.name]?.contains(key) ?? false } }
                    if !owners.contains(self.cluster.nodeID) && !waiting {
                        _ = self.pool.runIfActive(eventLoop: eventLoop) { try? store.discard(key) }
                    }
                }
            }
        }
        return EventLoopFuture.andAllComplete(sends, on: eventLoop).always { _ in
            // What failed was hinted again (in memory); the file now holds exactly that.
            self.hints.withLock { hints in file.rewrite(hints[peer.name] ?? [], for: peer.name) }
        }
    }
}
