import CStrataSystem
import Synchronization

/// Warm start: after a restart, load the records that were hot before it back into memory.
///
/// The writer snapshots the memory tier's records periodically and at close (`Snapshots`, in the
/// format of `SnapshotFiles`). On open, the store serves at once (a miss simply reads disk) while
/// background threads stream the snapshot's segments into memory at disk speed, at a low
/// scheduling priority so that serving keeps the CPU it needs. A record is trusted unless its key
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

    /// Threads that stream snapshot segments (each at a low priority).
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

    /// Streams the snapshot's segments into memory, several threads taking buckets in turn.
    private func loadSegments(_ manifest: SnapshotFiles.Manifest, start: UInt64) throws {
        let changed = writer.snapshots.changedSince(manifest.journalFrom)
        counters.warmTotalKeys.store(Int(manifest.segments.reduce(0) { $0 + $1.entries }), ordering: .relaxed)
        let nextBucket = Atomic<Int>(0)
        let memoryFull = Atomic<Bool>(false)
        let work: @Sendable () -> Void = { [self] in
            _ = strata_set_thread_nice(10)
            while !warmStop.load(ordering: .relaxed) && !memoryFull.load(ordering: .relaxed) {
                let bucket = nextBucket.wrappingAdd(1, ordering: .relaxed).oldValue
                guard bucket < manifest.segments.count else { return }
                let segment = manifest.segments[bucket]
                guard segment.generation > 0 else { continue }
                let path = writer.snapshots.directory + "/" + SnapshotFiles.segmentName(bucket: bucket, generation: segment.generation)
                do {
                    if try loadSegment(path, bucket: bucket, changed: changed) { memoryFull.store(true, ordering: .relaxed) }
                } catch {
                    logger.warning(
                        "hot-set snapshot segment skipped; its keys are read from LMDB when asked for",
                        metadata: ["segment": "\(path)", "reason": "\(error)"])
                }
                counters.warmNanoseconds.store(Int(monotonicNanoseconds() - start), ordering: .relaxed)
            }
        }
        let helpers = (1..<Self.warmThreads).map { _ in StoreThread(name: "strata-warm-start", work) }
        work()
        for helper in helpers { helper.join() }
    }

    /// Loads one segment; returns true once memory is full.
    private func loadSegment(_ path: String, bucket: Int, changed: Set<UInt64>) throws -> Bool {
        let reader = try SegmentReader(path: path, bucket: bucket)
        var fullInARow = 0
        let floor = writer.floor
        while try reader.nextBlock({ key, record in
            guard fullInARow < 256 else { return }
            let now = currentTimeMilliseconds()
            let userHash = StableHash.hash(key)
            let storageHash = disk.isDerived(key) ? disk.storageKey(key).withUnsafeBytes { StableHash.hash($0) } : userHash
            let result: MemoryTier.FillResult? = locks.withLock(userHash) {
                if memory.contains(key, hash: userHash) { return .present }
                if changed.contains(storageHash) || writer.changedDuringWarmUp.withLock({ $0.contains(storageHash) }) {
                    return loadFromDisk(key, hash: userHash)  // written since the snapshot: LMDB has the newest
                }
                // The block's checksum covered the record.
                guard let header = try? Record.header(record, verify: false), !header.flags.contains(.tombstone),
                    header.version > floor, header.expiry == 0 || header.expiry > now
                else { return nil }
                if let full = try? Record.fullKey(record, header), !full.elementsEqual(key) { return nil }
                guard let stored = try? Record.storedValue(record, header) else { return nil }
                if header.flags.contains(.compressed) {
                    guard let value = try? compressor.decompress(stored, rawLength: header.rawLength) else { return nil }
                    return value.withUnsafeBytes { memory.fill(key, hash: userHash, value: $0, expiry: header.expiry) }
                }
                guard stored.count == header.rawLength else { return nil }
                return memory.fill(key, hash: userHash, value: stored, expiry: header.expiry)
            }
            switch result {
            case .inserted?:
                fullInARow = 0
                counters.add(counters.warmLoadedKeys)
                counters.add(counters.warmLoadedBytes, key.count + record.count)
            case .full?: fullInARow += 1
            default: break
            }
        }) {
            if fullInARow >= 256 { return true }
            if warmStop.load(ordering: .relaxed) { return false }
        }
        return false
    }

    /// Loads `key`'s current value from the write queue or LMDB (caller holds its stripe lock).
    private func loadFromDisk(_ key: UnsafeRawBufferPointer, hash: UInt64) -> MemoryTier.FillResult? {
        guard let entry = current(key, hash: hash, now: currentTimeMilliseconds(), promote: false) else { return nil }
        return entry.value.withUnsafeBytes { memory.fill(key, hash: hash, value: $0, expiry: entry.expiresAt) }
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
