/// Warm start: after a restart, load the keys that were hot before it back into memory.
///
/// The writer snapshots the memory tier's keys, most recently used first, periodically and at
/// close (`DiskTier.writeSnapshot`). On open, the store serves at once (a miss simply reads disk)
/// while a background thread reads that list and loads each key's current value from disk into
/// memory, hottest first, until the memory budget is full. It never overwrites what clients
/// wrote meanwhile: each key is loaded under its stripe lock, only if absent from memory, from
/// the write queue or a read transaction newer than the last commit.
extension TieredStore {
    /// How far the warm start has got.
    public var warmUp: WarmUpProgress {
        WarmUpProgress(
            loadedKeys: counters.warmLoadedKeys.load(ordering: .relaxed),
            loadedBytes: counters.warmLoadedBytes.load(ordering: .relaxed),
            totalKeys: counters.warmTotalKeys.load(ordering: .relaxed),
            done: counters.warmDone.load(ordering: .relaxed),
            seconds: Double(counters.warmNanoseconds.load(ordering: .relaxed)) / 1e9)
    }

    /// Blocks until the warm start has finished.
    public func waitForWarmUp() {
        let done = Wakeup()
        let alreadyDone = warmFinished.withLock { waiters -> Bool in
            guard waiters != nil else { return true }
            waiters!.append { done.signal() }
            return false
        }
        if !alreadyDone { done.wait() }
    }

    func startWarmUp() {
        // A thread of its own, because loading reads LMDB, which may block on the disk.
        let thread = StoreThread(name: "strata-warm-start") { [self] in
            let start = monotonicNanoseconds()
            do {
                try loadSnapshot(start: start)
            } catch {
                logger.warning("warm start stopped early", metadata: ["error": "\(error)"])
            }
            counters.warmNanoseconds.store(Int(monotonicNanoseconds() - start), ordering: .relaxed)
            counters.warmDone.store(true, ordering: .relaxed)
            let waiters = warmFinished.withLock { w -> [@Sendable () -> Void] in
                let all = w ?? []
                w = nil
                return all
            }
            for waiter in waiters { waiter() }
            logger.info("warm start finished", metadata: ["keys": "\(warmUp.loadedKeys)", "seconds": "\(warmUp.seconds)"])
        }
        thread.detach()
    }

    private func loadSnapshot(start: UInt64) throws {
        let keys = try disk.readSnapshot()
        counters.warmTotalKeys.store(keys.count, ordering: .relaxed)
        var index = 0
        while index < keys.count && !warmStop.load(ordering: .relaxed) {
            // One read transaction per batch; renewed whenever a commit finished meanwhile, so a
            // key is never loaded from a snapshot older than the last committed write.
            var txnSequence = writer.appliedSequence
            var txn = try disk.env.beginRead()
            let end = min(keys.count, index + 1024)
            while index < end {
                let key = keys[index]
                index += 1
                let full: Bool = try key.withUnsafeBytes { k in
                    let hash = StableHash.hash(k)
                    return try locks.withLock(hash) {
                        if memory.contains(k, hash: hash) { return false }
                        let storageKey = disk.storageKey(k)
                        let record: [UInt8]?
                        switch writer.lookup(storageKey) {
                        case .deleted: return false
                        case .put(let queued): record = queued
                        case .none:
                            let sequence = writer.appliedSequence
                            if sequence != txnSequence {
                                txnSequence = sequence
                                txn = try disk.env.beginRead()
                            }
                            record = try storageKey.withUnsafeBytes { try txn.get(disk.data, $0).map { [UInt8]($0) } }
                        }
                        guard let record,
                            let entry = decode(record, key: k, storageKey: storageKey, now: currentTimeMilliseconds())
                        else { return false }
                        let result = entry.value.withUnsafeBytes {
                            memory.fill(k, hash: hash, value: $0, expiry: entry.expiresAt)
                        }
                        switch result {
                        case .inserted:
                            counters.add(counters.warmLoadedKeys)
                            counters.add(counters.warmLoadedBytes, k.count + entry.value.count)
                            return false
                        case .present: return false
                        case .full: return true
                        }
                    }
                }
                if full { return }
            }
            counters.warmNanoseconds.store(Int(monotonicNanoseconds() - start), ordering: .relaxed)
        }
    }
}
