import CStrataSystem
import Synchronization

/// Warm start: after a restart, load the records that were hot before it back into memory.
///
/// The writer snapshots the memory tier's records periodically and at close (`Snapshots`, in the
/// format of `SnapshotFiles`). On open, the store serves at once (a miss simply reads disk) while
/// two background threads stream the snapshot's segments into memory at disk speed. A record is
/// trusted unless its key
/// was written since the snapshot began (the journals) or since the store opened (recorded by
/// the writer while the warm start runs): those are read from LMDB instead, so nothing newer is
/// ever overwritten. Each key is loaded under its stripe lock, only if absent from memory.
/// A directory without a usable snapshot falls back to the key list older versions kept in LMDB.
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

    /// Threads that stream snapshot segments.
    static let warmThreads = 2

    private func loadSnapshot(start: UInt64) throws {
        defer {
            writer.recordingChanges.store(false, ordering: .relaxed)
            writer.changedDuringWarmUp.withLock { $0 = [] }
        }
        if let manifest = writer.snapshots.manifest {
            try loadSegments(manifest, start: start)
        } else {
            try loadKeyList(start: start)
        }
    }

    /// Streams the snapshot's segments into memory. Each thread takes a share of the memory
    /// tier's shards and merges their buckets' segments by rank, so each shard is filled in its
    /// old recency order (hottest first; later fills go to the cold end).
    private func loadSegments(_ manifest: SnapshotFiles.Manifest, start: UInt64) throws {
        let changed = writer.snapshots.changedSince(manifest.journalFrom)
        let trustNothing = writer.snapshotUntrusted.load(ordering: .relaxed)
        let total = Int(manifest.segments.reduce(0) { $0 + $1.entries })
        counters.warmTotalKeys.store(total, ordering: .relaxed)
        memory.reserve(entries: total)
        let shardMask = memory.shardCount - 1
        let threads = Self.warmThreads
        // At normal priority: under a load that kept both cores busy, nice 10 halved the loading
        // speed (ready at 6.5 s instead of 3.3 s for 1M x 1 KiB) for no better p99 (9.7 against
        // 10.7 ms in the worst second), and the sooner memory is warm the sooner reads stop
        // costing a disk lookup. Two threads bound its share.
        let work: @Sendable (Int) -> Void = { [self] thread in
            var readers: [SegmentReader] = []
            for (bucket, segment) in manifest.segments.enumerated()
            where segment.generation > 0 && (bucket & shardMask) % threads == thread {
                let path = writer.snapshots.directory + "/" + SnapshotFiles.segmentName(bucket: bucket, generation: segment.generation)
                do {
                    let reader = try SegmentReader(path: path, bucket: bucket)
                    if try reader.nextBlock() { readers.append(reader) }
                } catch {
                    skipped(path, error)
                }
            }
            merge(readers, changed: changed, trustNothing: trustNothing, start: start)
        }
        let helpers = (1..<threads).map { thread in StoreThread(name: "strata-warm-start") { work(thread) } }
        work(0)
        for helper in helpers { helper.join() }
    }

    private func skipped(_ path: String, _ error: any Error) {
        logger.warning(
            "hot-set snapshot segment skipped from here on; its keys are read from LMDB when asked for",
            metadata: ["segment": "\(path)", "reason": "\(error)"])
    }

    /// Loads the entries of `readers` lowest rank first, until they end or memory is full.
    private func merge(_ readers: [SegmentReader], changed: Set<UInt64>, trustNothing: Bool, start: UInt64) {
        var readers = readers
        var positions = [Int](repeating: 0, count: readers.count)
        // The rank at each reader's position, kept apart so the scan for the lowest is a tight loop.
        var heads = readers.map { $0.entries[0].rank }
        var fullInARow = 0
        var loaded = 0
        let floor = writer.floor
        while !readers.isEmpty && fullInARow < 256 && !warmStop.load(ordering: .relaxed) {
            var next = 0
            var lowest = heads[0]
            for i in 1..<heads.count where heads[i] < lowest {
                next = i
                lowest = heads[i]
            }
            let reader = readers[next]
            let position = positions[next]
            let result = reader.withEntry(position) { key, record in
                fill(key, record: record, floor: floor, changed: changed, trustNothing: trustNothing)
            }
            switch result {
            case .inserted?:
                fullInARow = 0
                loaded += 1
                counters.add(counters.warmLoadedKeys)
                counters.add(counters.warmLoadedBytes, reader.entries[position].key.count + reader.entries[position].record.count)
            case .full?: fullInARow += 1
            default: break
            }
            positions[next] += 1
            if positions[next] < reader.entries.count {
                heads[next] = reader.entries[positions[next]].rank
            } else {
                var more = false
                do {
                    more = try reader.nextBlock()
                } catch {
                    skipped(reader.path, error)
                }
                if more {
                    positions[next] = 0
                    heads[next] = reader.entries[0].rank
                } else {
                    readers.remove(at: next)
                    positions.remove(at: next)
                    heads.remove(at: next)
                }
            }
            if loaded % 4096 == 0 {
                counters.warmNanoseconds.store(Int(monotonicNanoseconds() - start), ordering: .relaxed)
            }
        }
    }

    /// Puts one snapshot entry into memory unless the key is there already or was written since
    /// the snapshot (then its current value comes from LMDB).
    private func fill(
        _ key: UnsafeRawBufferPointer, record: UnsafeRawBufferPointer, floor: Version, changed: Set<UInt64>, trustNothing: Bool
    ) -> MemoryTier.FillResult? {
        let hash = StableHash.hash(key)
        return locks.withLock(hash) {
            // (A key already in memory is left as it is: `fill` answers `.present`.)
            if trustNothing || changed.contains(hash) || writer.changedSinceOpen(hash) {
                return loadFromDisk(key, hash: hash)  // written since the snapshot: LMDB has the newest
            }
            // The block's checksum covered the record.
            guard let header = try? Record.header(record, verify: false), !header.flags.contains(.tombstone),
                header.version > floor, header.expiry == 0 || header.expiry > currentTimeMilliseconds()
            else { return nil }
            if let full = try? Record.fullKey(record, header), !full.elementsEqual(key) { return nil }
            guard let stored = try? Record.storedValue(record, header) else { return nil }
            if header.flags.contains(.compressed) {
                guard let value = try? compressor.decompress(stored, rawLength: header.rawLength) else { return nil }
                return value.withUnsafeBytes { memory.fill(key, hash: hash, value: $0, expiry: header.expiry, kind: header.kind) }
            }
            guard stored.count == header.rawLength else { return nil }
            return memory.fill(key, hash: hash, value: stored, expiry: header.expiry, kind: header.kind)
        }
    }

    /// Loads `key`'s current value from the write queue or LMDB (caller holds its stripe lock).
    private func loadFromDisk(_ key: UnsafeRawBufferPointer, hash: UInt64) -> MemoryTier.FillResult? {
        guard let entry = current(key, hash: hash, now: currentTimeMilliseconds(), promote: false) else { return nil }
        return entry.value.withUnsafeBytes { memory.fill(key, hash: hash, value: $0, expiry: entry.expiresAt, kind: entry.kind) }
    }

    /// The warm start of a directory written before segment snapshots: a list of hot keys in
    /// LMDB, each looked up in LMDB.
    private func loadKeyList(start: UInt64) throws {
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
                            memory.fill(k, hash: hash, value: $0, expiry: entry.expiresAt, kind: entry.kind)
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
