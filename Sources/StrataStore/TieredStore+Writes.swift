/// Writes: every mutation holds the key's stripe lock, updates memory, and queues the disk write.
extension TieredStore {
    /// Sets `key` to `value`, expiring at `expiresAt` (ms since the epoch; 0 = never).
    public func set(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64 = 0) throws {
        try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in try set(k, v, expiresAt: expiresAt) }
        }
    }

    /// Sets `key` to `value` (raw bytes), expiring at `expiresAt` (ms since the epoch; 0 = never).
    public func set(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, expiresAt: Int64 = 0) throws {
        let hash = StableHash.hash(key)
        try locks.withLock(hash) { try write(key, hash: hash, value: value, expiresAt: expiresAt) }
    }

    /// Sets `key` if `condition` holds; returns whether it did.
    @discardableResult
    public func set(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64 = 0, condition: WriteCondition) throws -> Bool {
        try update(key, accepting: nil) { current in
            switch condition {
            case .ifAbsent where current != nil, .ifPresent where current == nil:
                return (.none, false)
            default:
                return (.set(value: value, expiresAt: expiresAt), true)
            }
        }
    }

    /// Reads `key`'s current entry, lets `body` decide what to do, and does it, atomically with
    /// respect to every other write of `key` (read-modify-write: INCR, APPEND, SET NX/XX/GET...).
    /// A key of another kind than `accepting` throws `StoreError.wrongType` before `body` runs
    /// (nil: any kind, for commands that replace or only expire a key).
    public func update<R>(_ key: [UInt8], accepting: ValueKind? = .string, _ body: (Entry?) throws -> (Mutation, R)) throws -> R {
        try key.withUnsafeBytes { k in
            let hash = StableHash.hash(k)
            return try locks.withLock(hash) {
                let now = currentTimeMilliseconds()
                let entry = current(k, hash: hash, now: now, promote: false)
                if let accepting, let entry, entry.kind != accepting { throw StoreError.wrongType }
                let (mutation, result) = try body(entry)
                switch mutation {
                case .none:
                    break
                case .set(let value, let expiresAt, let kind):
                    try value.withUnsafeBytes { try write(k, hash: hash, value: $0, expiresAt: expiresAt, kind: kind) }
                case .delete:
                    if entry != nil { try remove(k, hash: hash, now: now) }
                case .expire(let at):
                    if let entry {
                        if at != 0 && at <= now {
                            try remove(k, hash: hash, now: now)
                        } else {
                            try entry.value.withUnsafeBytes { try write(k, hash: hash, value: $0, expiresAt: at, kind: entry.kind) }
                        }
                    }
                }
                return result
            }
        }
    }

    /// Deletes `key`; returns whether it existed.
    @discardableResult
    public func delete(_ key: [UInt8]) throws -> Bool {
        try update(key, accepting: nil) { current in (current == nil ? .none : .delete, current != nil) }
    }

    /// Sets `key` to expire at `at` (ms since the epoch; a time not in the future deletes it).
    /// Returns whether the key existed.
    @discardableResult
    public func expire(_ key: [UInt8], at: Int64) throws -> Bool {
        try update(key, accepting: nil) { current in (current == nil ? .none : .expire(at: at), current != nil) }
    }

    /// Removes `key`'s expiry; returns whether it had one.
    @discardableResult
    public func persist(_ key: [UInt8]) throws -> Bool {
        try update(key, accepting: nil) { current in
            guard let current, current.expiresAt != 0 else { return (.none, false) }
            return (.expire(at: 0), true)
        }
    }

    /// Sets every key in `pairs`, atomically with respect to other writes of those keys; with
    /// `onlyIfNoneExist`, sets none of them if any exists (MSETNX). Returns whether it set them.
    @discardableResult
    public func setAll(_ pairs: [(key: [UInt8], value: [UInt8])], expiresAt: Int64 = 0, onlyIfNoneExist: Bool) throws -> Bool {
        let hashes = pairs.map { pair in pair.key.withUnsafeBytes { StableHash.hash($0) } }
        return try locks.withLocks(hashes) {
            let now = currentTimeMilliseconds()
            if onlyIfNoneExist {
                for (i, pair) in pairs.enumerated() {
                    let exists = pair.key.withUnsafeBytes { current($0, hash: hashes[i], now: now, promote: false) } != nil
                    if exists { return false }
                }
            }
            for (i, pair) in pairs.enumerated() {
                try pair.key.withUnsafeBytes { k in
                    try pair.value.withUnsafeBytes { v in try write(k, hash: hashes[i], value: v, expiresAt: expiresAt) }
                }
            }
            return true
        }
    }

    /// Deletes every key from both tiers: every record whose version is at most `floor` (nil: a
    /// new version, so every key written before this call). A record at or below the floor is
    /// never stored again (`applyRecord` refuses it), so a flush is final even against replicas
    /// that missed it. Returns the flush's floor, or nil if an equal or newer flush came first.
    @discardableResult
    public func flush(upTo floor: Version? = nil) -> Version? {
        let floor = floor ?? clock.now()
        clock.observe(floor)  // later writes order after the flush
        let clock = self.clock
        let requested = writer.requestClear(floor: floor, latest: { clock.latest })
        // After the request, so a read cannot promote a flushed value back in. The memory tier
        // only caches what the disk tier holds: dropping all of it loses nothing.
        if requested {
            memory.removeAll()
            counters.add(counters.flushes)
        }
        return requested ? floor : nil
    }

    /// The floor of the newest flush: records at or below it are gone for good (`Version.zero`:
    /// never flushed).
    public var flushFloor: Version { writer.floor }

    // MARK: Internals (caller holds the key's stripe lock)

    func checkWritable() throws {
        if isClosed.load(ordering: .relaxed) { throw StoreError(.closed, "the store is closed") }
        if let failure = writer.failure {
            throw StoreError(.diskFull, "writes are refused until the disk tier recovers: \(failure.message)")
        }
    }

    func write(_ key: UnsafeRawBufferPointer, hash: UInt64, value: UnsafeRawBufferPointer, expiresAt: Int64, kind: ValueKind = .string) throws {
        try checkWritable()
        if key.count + value.count + Record.headerSize > disk.budget / 2 {
            throw StoreError(
                .valueTooLarge,
                "value of \(value.count) bytes is too large for the disk tier (budget \(disk.budget) bytes; at most half of it per value)")
        }
        let version = clock.now()
        let (record, compressedIn, compressedOut) = Record.encode(
            value: value, fullKey: disk.isDerived(key) ? key : nil, expiry: expiresAt, version: version, kind: kind,
            stamp: UInt32(truncatingIfNeeded: version.milliseconds / 1000),
            compressThreshold: configuration.compressThreshold, compressor: compressor)
        if compressedIn > 0 {
            counters.add(counters.compressionBytesIn, compressedIn)
            counters.add(counters.compressionBytesOut, compressedOut)
        }
        memory.set(key, hash: hash, value: value, expiry: expiresAt, kind: kind)
        _ = writer.enqueue(disk.storageKey(key), .put(record), keyHash: hash)
    }

    func remove(_ key: UnsafeRawBufferPointer, hash: UInt64, now: Int64) throws {
        try checkWritable()
        memory.remove(key, hash: hash)
        let version = clock.now()
        let (tombstone, _, _) = Record.encode(
            value: UnsafeRawBufferPointer(start: nil, count: 0), fullKey: disk.isDerived(key) ? key : nil,
            expiry: now + configuration.tombstoneTTL, version: version, tombstone: true,
            stamp: UInt32(truncatingIfNeeded: now / 1000), compressThreshold: Int.max, compressor: compressor)
        _ = writer.enqueue(disk.storageKey(key), .delete(tombstone: tombstone), keyHash: hash)
    }
}
