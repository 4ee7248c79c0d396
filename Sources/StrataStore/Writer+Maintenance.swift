import CStrataSystem
#if canImport(Glibc)
import Glibc
#endif

/// The writer's background work: expiry sweeps, the residency check, handing freed memory back,
/// hot-key snapshots, and evicting from the disk tier when its budget nears.
extension Writer {
    /// How often expired entries are swept from both tiers, a few at a time so a sweep stays short.
    static let sweepInterval: Duration = .milliseconds(100)
    /// How often the disk tier's page-cache residency is checked: `mincore` over the map is not free.
    static let residencyInterval: Duration = .seconds(2)
    /// How long the node must see no reads or writes before a wanted `malloc_trim` runs, because
    /// the trim holds each malloc arena's lock while it walks it and would stall an event loop.
    static let quietBeforeTrim: Duration = .milliseconds(300)
    /// A batch at least this big (or a full `applyAtBytes` batch) is part of a write burst (a
    /// backlog built up): trim after it.
    static let burstBytes = 8 << 20
    /// Steady writes trim once per this many bytes applied.
    static let trimEveryBytes = 256 << 20

    /// The timed background work of one round of the writer's loop.
    func runMaintenance(
        _ clocks: inout Clocks, now: UInt64, sweepHands: inout ([UInt8], [UInt8]),
        random: inout SystemRandomNumberGenerator
    ) {
        if now - clocks.lastSweep >= Self.sweepInterval.nanoseconds {
            clocks.lastSweep = now
            sweep(&sweepHands)
            if clocks.lastResidencyCheck.map({ now - $0 >= Self.residencyInterval.nanoseconds }) ?? true {
                clocks.lastResidencyCheck = now
                diskResident.store(disk.env.residentShare(using: &random) >= 0.99, ordering: .relaxed)
            }
            trimIfQuiet(&clocks, now: now)
        }
        // The snapshot at stop waits until every queued write is in LMDB, where it reads the
        // records: else the last writes' keys would be missing from it. (One asked for while writes
        // keep coming follows an apply: what comes after is in the next journal.)
        let (requested, ready) = state.withLock { s in
            (s.snapshotRequested, !s.stopping || (s.pending.isEmpty && s.applying.isEmpty))
        }
        let snapshotDue = snapshotInterval.map { now - clocks.lastSnapshot >= $0.nanoseconds } ?? false
        if requested ? ready : snapshotDue {
            clocks.lastSnapshot = now
            state.withLock { $0.snapshotRequested = false }
            writeSnapshot(&clocks)
        }
    }

    private func sweep(_ hands: inout ([UInt8], [UInt8])) {
        let nowMs = currentTimeMilliseconds()
        _ = memory.sweepExpired(now: nowMs, perShard: 256)
        do {
            let txn = try disk.env.beginWrite()
            let removed = try disk.sweepExpired(
                now: nowMs, limit: 1000, dataHand: &hands.0, tombstoneHand: &hands.1, in: txn)
            try txn.commit()
            counters.add(counters.diskExpirations, removed)
        } catch {
            reportIOError("expiry sweep failed", error, level: .warning)
        }
    }

    /// Starts a hot-set snapshot on a thread of its own; at stop, writes it here and waits.
    private func writeSnapshot(_ clocks: inout Clocks) {
        let stopping = state.withLock { $0.stopping }
        if stopping {
            // The last snapshot must be whole before the store closes: wait for one under way.
            var waits = 0
            while snapshots.running.load(ordering: .acquiring) && waits < 6000 {
                usleep(5000)
                waits += 1
            }
        }
        let tier = memory.counters  // one pass over the shards' locks
        let churn = tier.evictions + counters.promotions.load(ordering: .relaxed)
        let drifted = churn - clocks.churnAtSnapshot > max(1024, tier.items / 10)
        guard var begun = snapshots.begin(drifted: drifted) else { return }  // one is under way
        if stopping {
            // Nothing else runs now: the sooner the snapshot is written, the sooner the node exits.
            begun.urgent = true
            begun.threads = 2
        }
        let job = begun
        clocks.churnAtSnapshot = churn
        let (snapshots, memory, disk, logger) = (self.snapshots, self.memory, self.disk, self.logger)
        let work: @Sendable () -> Void = { [self] in
            let start = monotonicNanoseconds()
            // Packed (`[u32 length][key]` each): one buffer, not an array per key.
            let keys = memory.packedHottestKeys(maxBytes: max(memory.budget, 1 << 20))
            do {
                let written = try snapshots.write(job, packedKeys: keys, disk: disk)
                logger.debug(
                    "wrote hot-set snapshot",
                    metadata: [
                        "hot-key bytes": "\(keys.count)", "records written": "\(written)",
                        "buckets": "\(job.buckets.nonzeroBitCount)",
                        "seconds": "\(Double(monotonicNanoseconds() - start) / 1e9)",
                    ])
            } catch {
                reportIOError("hot-set snapshot failed", error, level: .warning)
            }
        }
        if stopping {
            work()
        } else {
            StoreThread(name: "strata-snapshot", work).detach()
        }
    }

    // MARK: Handing memory back

    /// Records an applied batch for the trim heuristic. The batch's records were allocated on the
    /// event loops' threads and freed here, and glibc keeps such memory in per-thread arenas, so
    /// without a trim a write burst would leave the process far above its budgets for good; but a
    /// trim after every apply costs madvise calls and page faults, so it waits for a burst to end.
    func noteApplied(bytes: Int, _ clocks: inout Clocks) {
        clocks.appliedSinceTrim += bytes
        if bytes >= min(Self.burstBytes, applyAtBytes) || clocks.appliedSinceTrim >= Self.trimEveryBytes {
            clocks.trimWanted = true
            clocks.appliedSinceTrim = 0
        }
    }

    /// Runs the wanted `malloc_trim` once no read or write has come in for `quietBeforeTrim`.
    /// (A node that stays busy keeps the memory: it reuses it. It is only not handed back.)
    private func trimIfQuiet(_ clocks: inout Clocks, now: UInt64) {
        guard clocks.trimWanted else { return }
        let memoryCounters = memory.counters
        let activity = memoryCounters.hits &+ memoryCounters.misses &+ Int(truncatingIfNeeded: state.withLock { $0.nextSequence })
        if activity != clocks.lastActivity {
            clocks.lastActivity = activity
            clocks.quietSince = now
            return
        }
        guard now - clocks.quietSince >= Self.quietBeforeTrim.nanoseconds else { return }
        clocks.trimWanted = false
        // The pending tables keep their slots between batches (no regrowing under the lock while
        // writes come in); once the burst is over, give them back, or a burst's tables (tens of
        // MiB for a few hundred thousand keys) would stay for good.
        clocks.spare = PendingTable()
        let released: PendingTable? = state.withLock { s in
            guard s.pending.isEmpty, s.pending.capacity > 0 else { return nil }
            var emptied = PendingTable()
            swap(&emptied, &s.pending)
            return emptied
        }
        _ = released  // freed here, outside the lock
        _ = strata_malloc_trim()
    }

    // MARK: Inside the apply transaction

    /// Applies clean-ups whose condition still holds.
    func applyMaintenance(_ items: [Maintenance], in txn: borrowing LMDBTransaction) throws {
        for item in items {
            switch item {
            case .deleteIfExpired(let key, let now):
                try key.withUnsafeBytes { k in
                    if let record = try txn.get(disk.data, k),
                        let header = try? Record.header(record, verify: false),
                        header.expiry != 0, header.expiry <= now
                    {
                        try txn.delete(disk.data, k)
                        counters.add(counters.diskExpirations)
                    }
                }
            case .deleteIfCorrupt(let key):
                try key.withUnsafeBytes { k in
                    if let record = try txn.get(disk.data, k), (try? Record.header(record)) == nil {
                        try txn.delete(disk.data, k)
                    }
                }
            }
        }
    }

    /// Evicts cold keys once the tier is above `evictAbove` of its budget, and keeps an episode
    /// going down to `evictTo`, so eviction runs in long strides rather than at every commit.
    func evictIfNearBudget(_ eviction: inout DiskTier.EvictionState, in txn: borrowing LMDBTransaction) throws -> [[UInt8]] {
        let used = disk.usedBytes(txn)
        guard used > Int(Double(disk.budget) * DiskTier.evictAbove)
            || (eviction.cutoff != nil && used > Int(Double(disk.budget) * DiskTier.evictTo))
        else { return [] }
        return try disk.evict(
            to: Int(Double(disk.budget) * DiskTier.evictTo), state: &eviction,
            maxVisits: used > disk.budget ? Int.max : 50_000, in: txn, isHot: isInMemory)
    }

    /// The map filled before the budget check could evict: evict down to half the budget in a
    /// transaction of its own, so the batch can be retried once.
    func evictForFullMap(_ eviction: inout DiskTier.EvictionState) throws {
        logger.warning("disk tier map full; evicting before retrying")
        let txn = try disk.env.beginWrite()
        eviction.cutoff = nil
        let evicted = try disk.evict(
            to: Int(Double(disk.budget) * 0.5), state: &eviction, maxVisits: Int.max, in: txn, isHot: isInMemory)
        try txn.commit()
        dropFromMemory(evicted)
    }

    private func isInMemory(_ key: [UInt8]) -> Bool {
        key.withUnsafeBytes { memory.contains($0, hash: StableHash.hash($0)) }
    }

    /// Keys evicted from disk leave memory too, so the two tiers never disagree after a restart.
    func dropFromMemory(_ keys: [[UInt8]]) {
        counters.add(counters.diskEvictions, keys.count)
        for key in keys {
            key.withUnsafeBytes { _ = memory.remove($0, hash: StableHash.hash($0)) }
        }
    }
}
