#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The entries of one memory-tier shard: a hash index, a slot array and an LRU list. No locks:
/// `MemoryTier` puts each table behind its shard's lock.
///
/// Nothing here is a Swift object. An entry is one block, from the table's `SlabHeap` (up to
/// 2 KiB) or `malloc`,
/// `[key length u32][value length u32][expiry i64, only if it expires][key][value]` (the key
/// length word's top bit says whether the expiry is there, and its bits 28-30 hold the value's
/// `ValueKind`, so keys of 256 MiB or more are never cached); its slot holds the block's address
/// and the LRU links as 32-bit slot numbers; the index is open addressing with linear probing, one
/// `UInt64` per bucket: the upper 32 bits of the key's hash (the tag, which also picks the home
/// bucket) and the slot number + 1 (0 marks an empty bucket). Deletion shifts later entries back,
/// so there are no tombstones and lookups stay short. Get, set and evict are O(1) and cost no
/// reference counting.
///
/// Accounting: an entry is charged the chunk its block takes (a slab chunk: the block rounded up
/// to 16 bytes; from glibc's malloc: plus an 8-byte header, at least 32), so its key, value,
/// header and the allocator's rounding;
/// the slot array and index are charged at their allocated size. `usedBytes` is that sum, and it
/// is what the budget bounds.
/// `@unchecked Sendable`: it owns raw memory, and every use is under its shard's lock.
struct LRUTable: ~Copyable, @unchecked Sendable {
    struct Slot {
        var block: UnsafeMutableRawPointer?
        var prev: UInt32
        var next: UInt32
    }

    /// The block header without an expiry, and with one.
    static let blockHeader = 8
    static let expiringBlockHeader = 16
    /// The key length's top bit: the block holds an expiry.
    private static let expiresFlag: UInt32 = 1 << 31
    /// The key length word's bits holding the value's kind.
    private static let kindShift: UInt32 = 28
    private static let kindMask: UInt32 = 0x7 << 28
    /// Keys this long or longer are not cached (their length would reach the kind bits).
    static let maxKeyCount = 1 << 28
    private static let none = UInt32.max
    private static let maxLoadNumerator = 4  // grow the index beyond 4/5 full...
    private static let maxLoadDenominator = 5
    // ...by a quarter (so the load stays between 0.64 and 0.8), and grow the slot array by an
    // eighth: growing by less than doubling keeps the unused part of both small (the rehash of a
    // shard's index at each growth is cheap; the memory is charged for good).

    private var slots: UnsafeMutablePointer<Slot>
    private var slotCapacity: Int
    private var slotsUsed = 0  // slots [0, slotsUsed) have been handed out at least once
    private var freeSlot = LRUTable.none
    private var index: UnsafeMutablePointer<UInt64>
    private var bucketCount: Int
    private var head = LRUTable.none  // most recently used
    private var tail = LRUTable.none  // least recently used
    private var sweepCursor = 0
    private let heap: SlabHeap

    private(set) var count = 0
    /// Bytes charged for entries (keys, values, per-entry overhead).
    private(set) var entryBytes = 0

    /// A table whose small entries come from slabs mapped `regionBytes` at a time.
    init(initialCapacity: Int = 64, regionBytes: Int = SlabHeap.minimumRegionSize) {
        heap = SlabHeap(regionBytes: regionBytes)
        let capacity = max(8, initialCapacity)
        slotCapacity = capacity
        slots = LRUTable.allocateArray(Slot.self, count: capacity)
        let buckets = max(16, capacity * LRUTable.maxLoadDenominator / LRUTable.maxLoadNumerator + 1)
        index = LRUTable.allocateArray(UInt64.self, count: buckets)
        index.initialize(repeating: 0, count: buckets)
        bucketCount = buckets
    }

    deinit {
        for s in 0..<slotsUsed {
            if let block = slots[s].block { releaseBlock(block) }
        }
        LRUTable.releaseArray(slots, count: slotCapacity)
        LRUTable.releaseArray(index, count: bucketCount)
    }

    /// Bytes of the slot array and index.
    var structuralBytes: Int { slotCapacity * MemoryLayout<Slot>.stride + bucketCount * 8 }
    /// Everything this table is charged for.
    var usedBytes: Int { entryBytes + structuralBytes }

    /// What an entry of these sizes is charged: the chunk of its block.
    static func charge(keyCount: Int, valueCount: Int, expires: Bool = false) -> Int {
        let block = (expires ? expiringBlockHeader : blockHeader) + keyCount + valueCount
        return block <= SlabHeap.maxBlock ? SlabHeap.chunkSize(block) : max(32, (block + 8 + 15) & ~15)
    }

    @inline(__always)
    private static func charge(_ block: UnsafeMutableRawPointer) -> Int {
        charge(keyCount: keyCount(block), valueCount: valueCount(block), expires: expires(block))
    }

    // MARK: Blocks

    @inline(__always)
    private static func keyCount(_ block: UnsafeMutableRawPointer) -> Int {
        Int(block.load(as: UInt32.self) & ~(expiresFlag | kindMask))
    }

    @inline(__always)
    private static func kind(_ block: UnsafeMutableRawPointer) -> ValueKind {
        ValueKind(rawValue: UInt8((block.load(as: UInt32.self) & kindMask) >> kindShift)) ?? .string
    }

    @inline(__always)
    private static func storeKind(_ kind: ValueKind, in block: UnsafeMutableRawPointer) {
        let word = block.load(as: UInt32.self) & ~kindMask
        block.storeBytes(of: word | (UInt32(kind.rawValue) << kindShift), as: UInt32.self)
    }

    @inline(__always)
    private static func expires(_ block: UnsafeMutableRawPointer) -> Bool {
        block.load(as: UInt32.self) & expiresFlag != 0
    }

    @inline(__always)
    private static func keyOffset(_ block: UnsafeMutableRawPointer) -> Int {
        expires(block) ? expiringBlockHeader : blockHeader
    }

    @inline(__always)
    private static func valueCount(_ block: UnsafeMutableRawPointer) -> Int {
        Int(block.load(fromByteOffset: 4, as: UInt32.self))
    }

    @inline(__always)
    private static func expiry(_ block: UnsafeMutableRawPointer) -> Int64 {
        expires(block) ? block.load(fromByteOffset: 8, as: Int64.self) : 0
    }

    @inline(__always)
    private static func key(_ block: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: block + keyOffset(block), count: keyCount(block))
    }

    @inline(__always)
    private static func value(_ block: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: block + keyOffset(block) + keyCount(block), count: valueCount(block))
    }

    private func makeBlock(
        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, expiry: Int64, kind: ValueKind
    ) -> UnsafeMutableRawPointer {
        let header = expiry != 0 ? LRUTable.expiringBlockHeader : LRUTable.blockHeader
        let count = header + key.count + value.count
        let block = count <= SlabHeap.maxBlock ? heap.allocate(count) : malloc(count)!
        block.storeBytes(
            of: UInt32(key.count) | (expiry != 0 ? LRUTable.expiresFlag : 0) | (UInt32(kind.rawValue) << LRUTable.kindShift),
            as: UInt32.self)
        block.storeBytes(of: UInt32(value.count), toByteOffset: 4, as: UInt32.self)
        if expiry != 0 { block.storeBytes(of: expiry, toByteOffset: 8, as: Int64.self) }
        if let k = key.baseAddress, key.count > 0 { (block + header).copyMemory(from: k, byteCount: key.count) }
        if let v = value.baseAddress, value.count > 0 {
            (block + header + key.count).copyMemory(from: v, byteCount: value.count)
        }
        return block
    }

    private func releaseBlock(_ block: UnsafeMutableRawPointer) {
        let count = LRUTable.keyOffset(block) + LRUTable.keyCount(block) + LRUTable.valueCount(block)
        if count <= SlabHeap.maxBlock { heap.release(block) } else { free(block) }
    }

    @inline(__always)
    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        if a.count == 0 { return true }
        return memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
    }

    // MARK: Index

    @inline(__always)
    private static func tag(_ hash: UInt64) -> UInt64 { hash >> 32 }

    /// The home bucket of a tag: Lemire's multiply-shift maps 32 bits onto any bucket count.
    @inline(__always)
    private func home(_ tag: UInt64) -> Int {
        Int(truncatingIfNeeded: (tag &* UInt64(bucketCount)) >> 32)
    }

    @inline(__always)
    private func nextBucket(_ bucket: Int) -> Int {
        bucket + 1 == bucketCount ? 0 : bucket + 1
    }

    /// How far `bucket` is past `from`, going forward and wrapping.
    @inline(__always)
    private func distance(from: Int, to bucket: Int) -> Int {
        bucket >= from ? bucket - from : bucket + bucketCount - from
    }

    /// The bucket holding `key`, or nil.
    @inline(__always)
    private func findBucket(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let tag = LRUTable.tag(hash)
        var bucket = home(tag)
        while true {
            let e = index[bucket]
            if e == 0 { return nil }
            if e >> 32 == tag {
                let slot = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) - 1
                if LRUTable.equal(LRUTable.key(slots[slot].block!), key) { return bucket }
            }
            bucket = nextBucket(bucket)
        }
    }

    @inline(__always)
    private func slotNumber(atBucket bucket: Int) -> Int {
        Int(truncatingIfNeeded: index[bucket] & 0xFFFF_FFFF) - 1
    }

    private mutating func insertIndex(tag: UInt64, slot: Int) {
        var bucket = home(tag)
        while index[bucket] != 0 { bucket = nextBucket(bucket) }
        index[bucket] = tag << 32 | UInt64(slot + 1)
    }

    /// Removes the entry at `bucket`, shifting back the entries that probed past it.
    private mutating func removeIndex(at removed: Int) {
        var hole = removed
        var next = nextBucket(hole)
        while index[next] != 0 {
            let homeBucket = home(index[next] >> 32)
            // Move the entry into the hole if its home bucket is not in (hole, next].
            if distance(from: homeBucket, to: hole) < distance(from: homeBucket, to: next) {
                index[hole] = index[next]
                hole = next
            }
            next = nextBucket(next)
        }
        index[hole] = 0
    }

    private mutating func growIndexIfNeeded() {
        guard (count + 1) * LRUTable.maxLoadDenominator > bucketCount * LRUTable.maxLoadNumerator else { return }
        rebuildIndex(buckets: bucketCount + bucketCount / 4)
    }

    /// Makes room for `entries` entries at once (the warm start knows how many it brings): the
    /// step-by-step growth would copy the slot array and rehash the index dozens of times.
    mutating func reserve(_ entries: Int) {
        if entries > slotCapacity {
            let newSlots = LRUTable.allocateArray(Slot.self, count: entries)
            newSlots.moveInitialize(from: slots, count: slotsUsed)
            LRUTable.releaseArray(slots, count: slotCapacity)
            slots = newSlots
            slotCapacity = entries
        }
        let buckets = entries * LRUTable.maxLoadDenominator / LRUTable.maxLoadNumerator + 1
        if buckets > bucketCount { rebuildIndex(buckets: buckets) }
    }

    private mutating func rebuildIndex(buckets newBuckets: Int) {
        let buckets = bucketCount
        let old = index
        index = LRUTable.allocateArray(UInt64.self, count: newBuckets)
        index.initialize(repeating: 0, count: newBuckets)
        bucketCount = newBuckets
        for i in 0..<buckets where old[i] != 0 {
            var bucket = home(old[i] >> 32)
            while index[bucket] != 0 { bucket = nextBucket(bucket) }
            index[bucket] = old[i]
        }
        LRUTable.releaseArray(old, count: buckets)
    }

    // MARK: Arrays

    /// Arrays of 64 KiB and more are mapped straight from the kernel and unmapped when the table
    /// outgrows them, so the memory goes back at once. (From malloc, the arrays a table outgrew
    /// would stay resident as free heap: several times the live array, for geometric growth.)
    private static let mapThreshold = 64 << 10

    private static func allocateArray<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let bytes = count * MemoryLayout<T>.stride
        if bytes >= mapThreshold {
            let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            precondition(raw != MAP_FAILED, "out of memory mapping \(bytes) bytes")
            return raw!.bindMemory(to: T.self, capacity: count)
        }
        return .allocate(capacity: count)
    }

    private static func releaseArray<T>(_ pointer: UnsafeMutablePointer<T>, count: Int) {
        let bytes = count * MemoryLayout<T>.stride
        if bytes >= mapThreshold {
            munmap(UnsafeMutableRawPointer(pointer), bytes)
        } else {
            pointer.deallocate()
        }
    }

    // MARK: Slots and the LRU list

    private mutating func allocateSlot() -> Int {
        if freeSlot != LRUTable.none {
            let s = Int(freeSlot)
            freeSlot = slots[s].next
            return s
        }
        if slotsUsed == slotCapacity {
            let newCapacity = slotCapacity + max(8, slotCapacity / 8)
            let newSlots = LRUTable.allocateArray(Slot.self, count: newCapacity)
            newSlots.moveInitialize(from: slots, count: slotsUsed)
            LRUTable.releaseArray(slots, count: slotCapacity)
            slots = newSlots
            slotCapacity = newCapacity
        }
        slotsUsed += 1
        return slotsUsed - 1
    }

    @inline(__always)
    private mutating func unlink(_ s: Int) {
        let p = slots[s].prev
        let n = slots[s].next
        if p != LRUTable.none { slots[Int(p)].next = n } else { head = n }
        if n != LRUTable.none { slots[Int(n)].prev = p } else { tail = p }
    }

    @inline(__always)
    private mutating func pushFront(_ s: Int) {
        slots[s].prev = LRUTable.none
        slots[s].next = head
        if head != LRUTable.none { slots[Int(head)].prev = UInt32(s) } else { tail = UInt32(s) }
        head = UInt32(s)
    }

    /// Puts `s` at the least recently used end: the warm start loads the hottest keys first, and
    /// each later (colder) one must sit behind them, and behind anything clients use meanwhile.
    private mutating func pushBack(_ s: Int) {
        slots[s].next = LRUTable.none
        slots[s].prev = tail
        if tail != LRUTable.none { slots[Int(tail)].next = UInt32(s) } else { head = UInt32(s) }
        tail = UInt32(s)
    }

    @inline(__always)
    private mutating func touch(_ s: Int) {
        guard head != UInt32(s) else { return }
        unlink(s)
        pushFront(s)
    }

    private mutating func removeEntry(bucket: Int) {
        let s = slotNumber(atBucket: bucket)
        let block = slots[s].block!
        entryBytes -= LRUTable.charge(block)
        releaseBlock(block)
        unlink(s)
        removeIndex(at: bucket)
        slots[s].block = nil
        slots[s].next = freeSlot
        freeSlot = UInt32(s)
        count -= 1
    }

    // MARK: Operations

    enum Lookup {
        case miss
        case expired
        case hit
    }

    /// Finds `key`, makes it the most recently used, and passes its value, expiry and kind to
    /// `body`. An entry whose expiry is at or before `now` is removed and reported as `.expired`.
    mutating func get(
        _ key: UnsafeRawBufferPointer, hash: UInt64, now: Int64, touch doTouch: Bool = true,
        _ body: (UnsafeRawBufferPointer, Int64, ValueKind) -> Void
    ) -> Lookup {
        guard let bucket = findBucket(key, hash: hash) else { return .miss }
        let s = slotNumber(atBucket: bucket)
        let block = slots[s].block!
        let expiry = LRUTable.expiry(block)
        if expiry != 0 && expiry <= now {
            removeEntry(bucket: bucket)
            return .expired
        }
        if doTouch { touch(s) }
        body(LRUTable.value(block), expiry, LRUTable.kind(block))
        return .hit
    }

    /// Sets `key`, evicting from the LRU end until everything fits in `budget`. Returns how many
    /// entries were evicted. A value that cannot fit even in an empty table is not stored, and any
    /// older value of `key` is removed (so the table never serves a stale value).
    @discardableResult
    mutating func set(
        _ key: UnsafeRawBufferPointer, hash: UInt64, value: UnsafeRawBufferPointer, expiry: Int64,
        kind: ValueKind = .string, budget: Int, onlyIfAbsent: Bool = false, evictIfNeeded: Bool = true,
        asLeastRecent: Bool = false
    ) -> (stored: Bool, evicted: Int) {
        let existing = findBucket(key, hash: hash)
        if key.count >= LRUTable.maxKeyCount {
            if let existing { removeEntry(bucket: existing) }
            return (false, 0)
        }
        if onlyIfAbsent && existing != nil { return (false, 0) }
        let charge = LRUTable.charge(keyCount: key.count, valueCount: value.count, expires: expiry != 0)
        if let existing {
            let s = slotNumber(atBucket: existing)
            let block = slots[s].block!
            if LRUTable.valueCount(block) == value.count && LRUTable.expires(block) == (expiry != 0) {
                // Same size: overwrite in place (no free, no malloc, no index change).
                if expiry != 0 { block.storeBytes(of: expiry, toByteOffset: 8, as: Int64.self) }
                LRUTable.storeKind(kind, in: block)
                if let v = value.baseAddress, value.count > 0 {
                    (block + LRUTable.keyOffset(block) + key.count).copyMemory(from: v, byteCount: value.count)
                }
                touch(s)
                return (true, 0)
            }
            removeEntry(bucket: existing)
        }
        guard charge + structuralBytes <= budget else { return (false, 0) }
        var evicted = 0
        while usedBytes + charge > budget, tail != LRUTable.none {
            guard evictIfNeeded else { return (false, 0) }
            evictTail()
            evicted += 1
        }
        growIndexIfNeeded()
        let s = allocateSlot()
        slots[s] = Slot(block: makeBlock(key: key, value: value, expiry: expiry, kind: kind), prev: 0, next: 0)
        if asLeastRecent { pushBack(s) } else { pushFront(s) }
        insertIndex(tag: LRUTable.tag(hash), slot: s)
        count += 1
        entryBytes += charge
        // Growing the slot array or index can push the structure over the budget: evict again.
        while usedBytes > budget, tail != LRUTable.none, tail != UInt32(s) {
            evictTail()
            evicted += 1
        }
        return (true, evicted)
    }

    /// Evicts least recently used entries until `usedBytes <= budget`. Returns how many.
    mutating func evict(toFit budget: Int) -> Int {
        var evicted = 0
        while usedBytes > budget, tail != LRUTable.none {
            evictTail()
            evicted += 1
        }
        return evicted
    }

    private mutating func evictTail() {
        let s = Int(tail)
        let key = LRUTable.key(slots[s].block!)
        let hash = StableHash.hash(key)
        let bucket = findBucket(key, hash: hash)!
        removeEntry(bucket: bucket)
    }

    /// Removes `key`; returns whether it was there.
    @discardableResult
    mutating func remove(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Bool {
        guard let bucket = findBucket(key, hash: hash) else { return false }
        removeEntry(bucket: bucket)
        return true
    }

    /// Whether `key` is present (expired or not), without touching the LRU order.
    func contains(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Bool {
        findBucket(key, hash: hash) != nil
    }

    /// Removes expired entries among the next `limit` slots (a hand that goes round the slot array).
    /// Returns how many were removed.
    mutating func sweepExpired(now: Int64, limit: Int) -> Int {
        guard slotsUsed > 0 else { return 0 }
        var removed = 0
        for _ in 0..<min(limit, slotsUsed) {
            if sweepCursor >= slotsUsed { sweepCursor = 0 }
            if let block = slots[sweepCursor].block {
                let expiry = LRUTable.expiry(block)
                if expiry != 0 && expiry <= now {
                    let key = LRUTable.key(block)
                    removeEntry(bucket: findBucket(key, hash: StableHash.hash(key))!)
                    removed += 1
                }
            }
            sweepCursor += 1
        }
        return removed
    }

    /// Calls `body` with keys from most to least recently used, until it returns false.
    func forEachMostRecent(_ body: (_ key: UnsafeRawBufferPointer, _ valueCount: Int) -> Bool) {
        var s = head
        while s != LRUTable.none {
            let block = slots[Int(s)].block!
            if !body(LRUTable.key(block), LRUTable.valueCount(block)) { return }
            s = slots[Int(s)].next
        }
    }

    /// Frees every entry.
    mutating func removeAll() {
        for s in 0..<slotsUsed {
            if let block = slots[s].block { releaseBlock(block) }
        }
        slotsUsed = 0
        freeSlot = LRUTable.none
        head = LRUTable.none
        tail = LRUTable.none
        count = 0
        entryBytes = 0
        sweepCursor = 0
        index.update(repeating: 0, count: bucketCount)
    }
}
