import Synchronization

/// The memory tier: a byte-budgeted LRU split into shards by key hash, each behind its own lock.
///
/// The budget is split evenly between shards; each shard evicts its own least recently used
/// entries, so eviction order is exact LRU within a shard and approximate LRU across the tier
/// (keys spread evenly over shards by hash). What the tier holds never exceeds the budget: every
/// shard's `usedBytes` (entries with their overhead, plus its index and slot array) stays within
/// its share. A value too large for a shard's share is not kept in memory; it is served from disk.
public final class MemoryTier: Sendable {
    struct ShardState: ~Copyable, Sendable {
        var table: LRUTable
        var hits = 0
        var misses = 0
        var evictions = 0
        var expirations = 0
    }

    final class Shard: Sendable {
        let state: Locked<ShardState>
        init(capacity: Int, regionBytes: Int) {
            state = Locked(ShardState(table: LRUTable(initialCapacity: capacity, regionBytes: regionBytes)))
        }
    }

    /// Bytes this tier may hold (changed live by `resize(budget:)`).
    public var budget: Int { budgetBytes.load(ordering: .relaxed) }
    /// Each shard's share of the budget.
    var shardBudget: Int { shardBudgetBytes.load(ordering: .relaxed) }
    private let budgetBytes: Atomic<Int>
    private let shardBudgetBytes: Atomic<Int>
    private let shards: [Shard]
    private let shardMask: UInt64

    /// A tier of `budget` bytes in `shardCount` shards (a power of two; nil picks one shard per
    /// 4 MiB of budget, 1 to 64).
    public init(budget: Int, shardCount requested: Int? = nil) {
        // One shard per 4 MiB of budget, between 1 and 64, rounded down to a power of two.
        var count = 1
        let wanted = requested ?? max(1, min(64, budget / (4 << 20)))
        while count * 2 <= wanted { count *= 2 }
        self.budgetBytes = Atomic(budget)
        self.shardBudgetBytes = Atomic(budget / count)
        self.shardMask = UInt64(count - 1)
        // Slab regions of a 64th of a shard's budget (at most 64 MiB): at most about 64 mappings
        // per shard, 4,096 for the tier, whatever the budget.
        let regionBytes = min(64 << 20, budget / count / 64)
        self.shards = (0..<count).map { _ in Shard(capacity: 64, regionBytes: regionBytes) }
    }

    /// Changes the budget to `newBudget` bytes and evicts each shard's least recently used
    /// entries until it fits its new share (CONFIG SET maxmemory). Returns how many were evicted.
    /// Writes racing with the change fit whichever share they read; none outlives the next write
    /// to its shard over the new bound.
    @discardableResult
    public func resize(budget newBudget: Int) -> Int {
        precondition(newBudget >= 0)
        let share = newBudget / shards.count
        budgetBytes.store(newBudget, ordering: .relaxed)
        shardBudgetBytes.store(share, ordering: .relaxed)
        var evicted = 0
        for shard in shards {
            evicted += shard.state.withLock { state in
                let n = state.table.evict(toFit: share)
                state.evictions += n
                return n
            }
        }
        return evicted
    }

    /// Number of shards.
    public var shardCount: Int { shards.count }

    @inline(__always)
    private func shard(_ hash: UInt64) -> Shard {
        shards[Int(truncatingIfNeeded: hash & shardMask)]
    }

    /// Looks `key` up; on a hit passes its value, expiry and kind to `body` under the shard's lock.
    @inline(__always)
    func get(
        _ key: UnsafeRawBufferPointer, hash: UInt64, now: Int64,
        _ body: (UnsafeRawBufferPointer, Int64, ValueKind) -> Void
    ) -> LRUTable.Lookup {
        shard(hash).state.withLock { state in
            let result = state.table.get(key, hash: hash, now: now, body)
            switch result {
            case .hit: state.hits += 1
            case .miss: state.misses += 1
            case .expired:
                state.misses += 1
                state.expirations += 1
            }
            return result
        }
    }

    /// Looks `key` up without counting a hit or miss and without changing the LRU order.
    func peek(
        _ key: UnsafeRawBufferPointer, hash: UInt64, now: Int64, _ body: (UnsafeRawBufferPointer, Int64, ValueKind) -> Void
    ) -> Bool {
        shard(hash).state.withLock { state in
            state.table.get(key, hash: hash, now: now, touch: false, body) == .hit
        }
    }

    /// Stores `key`, evicting as needed. Returns false if the value is too large to keep in memory
    /// (any older copy of the key is then removed).
    @discardableResult
    func set(
        _ key: UnsafeRawBufferPointer, hash: UInt64, value: UnsafeRawBufferPointer, expiry: Int64, kind: ValueKind
    ) -> Bool {
        shard(hash).state.withLock { state in
            let (stored, evicted) = state.table.set(
                key, hash: hash, value: value, expiry: expiry, kind: kind, budget: shardBudget)
            state.evictions += evicted
            return stored
        }
    }

    enum FillResult { case inserted, present, full }

    /// Inserts `key` at the least recently used end, only if it is absent and fits without
    /// evicting anything (warm start).
    func fill(
        _ key: UnsafeRawBufferPointer, hash: UInt64, value: UnsafeRawBufferPointer, expiry: Int64, kind: ValueKind
    ) -> FillResult {
        shard(hash).state.withLock { state in
            if state.table.contains(key, hash: hash) { return .present }
            let (stored, _) = state.table.set(
                key, hash: hash, value: value, expiry: expiry, kind: kind, budget: shardBudget, onlyIfAbsent: true,
                evictIfNeeded: false, asLeastRecent: true)
            return stored ? .inserted : .full
        }
    }

    /// Sizes every shard's table for `entries` entries in all (a warm start about to fill it),
    /// within what the budget allows.
    func reserve(entries: Int) {
        let perShard = entries / shards.count + entries / shards.count / 16 + 16  // keys do not spread evenly
        for shard in shards {
            shard.state.withLock { state in
                // Room for the arrays and at least a 16-byte entry each, or no reservation.
                guard perShard * 64 <= shardBudget else { return }
                state.table.reserve(perShard)
            }
        }
    }

    @discardableResult
    func remove(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Bool {
        shard(hash).state.withLock { $0.table.remove(key, hash: hash) }
    }

    func contains(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Bool {
        shard(hash).state.withLock { $0.table.contains(key, hash: hash) }
    }

    /// Removes expired entries, looking at up to `perShard` slots in each shard.
    func sweepExpired(now: Int64, perShard: Int) -> Int {
        var removed = 0
        for shard in shards {
            removed += shard.state.withLock { state in
                let n = state.table.sweepExpired(now: now, limit: perShard)
                state.expirations += n
                return n
            }
        }
        return removed
    }

    func removeAll() {
        for shard in shards { shard.state.withLock { $0.table.removeAll() } }
    }

    /// The hottest keys as the snapshot stores them, each `[u32 little-endian length][key]`,
    /// most recently used first, interleaving shards (each shard's own order is exact), up to
    /// `maxBytes` of keys. Packed in a few large buffers rather than an array per key: a snapshot
    /// of a million 14-byte keys raised anonymous memory by about 35 MiB instead of about 90.
    func packedHottestKeys(maxBytes: Int) -> [UInt8] {
        let perShard: [(bytes: [UInt8], offsets: [UInt32])] = shards.map { shard in
            shard.state.withLock { state in
                var bytes: [UInt8] = []
                var offsets: [UInt32] = []
                offsets.reserveCapacity(state.table.count)
                state.table.forEachMostRecent { key, _ in
                    offsets.append(UInt32(truncatingIfNeeded: bytes.count))
                    var length = UInt32(key.count).littleEndian
                    withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
                    bytes.append(contentsOf: key)
                    return true
                }
                return (bytes, offsets)
            }
        }
        var result: [UInt8] = []
        result.reserveCapacity(min(perShard.reduce(0) { $0 + $1.bytes.count }, maxBytes + maxBytes / 4 + 4096))
        var keyBytes = 0
        var position = 0
        var more = true
        while more && keyBytes < maxBytes {
            more = false
            for shard in perShard where position < shard.offsets.count {
                more = true
                let start = Int(shard.offsets[position])
                let end = position + 1 < shard.offsets.count ? Int(shard.offsets[position + 1]) : shard.bytes.count
                result.append(contentsOf: shard.bytes[start..<end])
                keyBytes += end - start - 4
            }
            position += 1
        }
        return result
    }

    /// What the tier holds and has done.
    public struct Counters: Sendable {
        public var items = 0
        public var bytes = 0
        public var hits = 0
        public var misses = 0
        public var evictions = 0
        public var expirations = 0
    }

    /// Totals over all shards, read now.
    public var counters: Counters {
        var c = Counters()
        for shard in shards {
            shard.state.withLock { state in
                c.items += state.table.count
                c.bytes += state.table.usedBytes
                c.hits += state.hits
                c.misses += state.misses
                c.evictions += state.evictions
                c.expirations += state.expirations
            }
        }
        return c
    }

    // MARK: Conveniences for embedding

    /// The value of `key`, if present and not expired.
    public func get(_ key: [UInt8]) -> [UInt8]? {
        key.withUnsafeBytes { k in
            var result: [UInt8]? = nil
            _ = get(k, hash: StableHash.hash(k), now: currentTimeMilliseconds()) { v, _, _ in result = [UInt8](v) }
            return result
        }
    }

    /// Stores `key` (expiring at `expiresAt` ms since the epoch, 0 = never), evicting as needed;
    /// returns false if the value is too large for a shard.
    @discardableResult
    public func set(_ key: [UInt8], _ value: [UInt8], expiresAt: Int64 = 0) -> Bool {
        key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in set(k, hash: StableHash.hash(k), value: v, expiry: expiresAt, kind: .string) }
        }
    }

    /// Removes `key`; returns whether it was there.
    @discardableResult
    public func remove(_ key: [UInt8]) -> Bool {
        key.withUnsafeBytes { remove($0, hash: StableHash.hash($0)) }
    }
}
