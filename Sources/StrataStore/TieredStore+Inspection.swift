/// Listing keys and looking inside the store.
extension TieredStore {
    /// Up to `count` live keys after `cursor` (nil: from the start), in storage order, and the
    /// cursor to continue from (nil when the scan is complete). Keys written before the call are
    /// seen; every key that exists for the whole scan is returned exactly once.
    public func scan(cursor: [UInt8]?, count: Int) throws -> (keys: [[UInt8]], next: [UInt8]?) {
        let (keys, next) = try scanWithExpiry(cursor: cursor, count: count)
        return (keys.map(\.key), next)
    }

    /// `scan`, with each key's absolute expiry (ms since the epoch; 0 = none) and kind.
    public func scanWithExpiry(cursor: [UInt8]?, count: Int) throws -> (keys: [ScannedKey], next: [UInt8]?) {
        try waitCommitted()
        return try disk.scan(after: cursor, limit: max(1, count), now: currentTimeMilliseconds())
    }

    /// A live key picked at random (RANDOMKEY); nil if there is none.
    public func randomKey() throws -> [UInt8]? {
        try waitCommitted()
        return try disk.randomKey(now: currentTimeMilliseconds())
    }

    /// Number of keys stored (counting expired keys not yet swept, as Redis' DBSIZE does).
    public func count() throws -> Int {
        try waitCommitted()
        return try disk.count()
    }

    /// What `key` holds, or nil if it does not exist (TYPE). Never promotes it.
    public func kind(of key: [UInt8]) -> ValueKind? {
        key.withUnsafeBytes { k in
            let hash = StableHash.hash(k)
            let now = currentTimeMilliseconds()
            var kind: ValueKind? = nil
            if memory.peek(k, hash: hash, now: now, { _, _, found in kind = found }) { return kind }
            return locks.withLock(hash) { current(k, hash: hash, now: now, promote: false) }?.kind
        }
    }

    /// Which tier holds `key`, its value's length, and how it is stored on disk.
    public func tier(of key: [UInt8]) -> TierInfo {
        key.withUnsafeBytes { k in
            let hash = StableHash.hash(k)
            let now = currentTimeMilliseconds()
            return locks.withLock(hash) {
                var valueLength = -1
                var memoryKind = ValueKind.string
                let inMemory = memory.peek(k, hash: hash, now: now) { value, _, kind in
                    valueLength = value.count
                    memoryKind = kind
                }
                let storageKey = disk.storageKey(k)
                var record: [UInt8]? = nil
                switch writer.lookup(storageKey) {
                case .put(let queued): record = queued
                case .deleted: record = nil
                case .none:
                    do {
                        record = try storageKey.withUnsafeBytes { try disk.read($0) }
                    } catch {
                        reportIOError("disk tier read failed", error)
                    }
                }
                var info = TierInfo.none
                if let record,
                    let header = try? record.withUnsafeBytes({ try Record.header($0) }),
                    !header.flags.contains(.tombstone), header.expiry == 0 || header.expiry > now
                {
                    info = TierInfo(
                        tier: .disk, valueLength: header.rawLength, storedLength: record.count,
                        compressed: header.flags.contains(.compressed), version: header.version, kind: header.kind)
                }
                if inMemory {
                    info.tier = .memory
                    info.valueLength = valueLength
                    info.kind = memoryKind
                }
                return info
            }
        }
    }

    /// Everything the store counts, read now.
    public var statistics: StoreStatistics {
        let m = memory.counters
        let c = counters
        return StoreStatistics(
            memoryItems: m.items,
            memoryBytes: m.bytes,
            memoryBudget: memory.budget,
            memoryHits: m.hits,
            memoryMisses: m.misses,
            memoryEvictions: m.evictions,
            memoryExpirations: m.expirations,
            diskItems: c.diskItems.load(ordering: .relaxed),
            diskBytes: c.diskBytes.load(ordering: .relaxed),
            diskBudget: disk.budget,
            diskFileBytes: isClosed.load(ordering: .relaxed) ? 0 : disk.env.lastPageNumber * disk.env.pageSize,
            diskHits: c.diskHits.load(ordering: .relaxed),
            diskMisses: c.diskMisses.load(ordering: .relaxed),
            diskEvictions: c.diskEvictions.load(ordering: .relaxed),
            diskExpirations: c.diskExpirations.load(ordering: .relaxed),
            promotions: c.promotions.load(ordering: .relaxed),
            compressionBytesIn: c.compressionBytesIn.load(ordering: .relaxed),
            compressionBytesOut: c.compressionBytesOut.load(ordering: .relaxed),
            crcFailures: c.crcFailures.load(ordering: .relaxed),
            fsyncs: c.fsyncs.load(ordering: .relaxed),
            fsyncSeconds: Double(c.fsyncNanoseconds.load(ordering: .relaxed)) / 1e9,
            commits: c.commits.load(ordering: .relaxed),
            writeErrors: c.writeErrors.load(ordering: .relaxed),
            diskIOErrors: c.ioErrors.load(ordering: .relaxed),
            pendingWrites: writer.pendingCount,
            warmUp: warmUp,
            flushes: c.flushes.load(ordering: .relaxed),
            flushFloor: writer.floor,
            diskWritesFailing: writer.failure != nil
        )
    }
}
