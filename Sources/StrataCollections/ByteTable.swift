/// A hash table from byte strings to `Value`: the large form of hashes, sets and a sorted set's
/// member index. Entries live densely in `slots` (a removal moves the last slot into the hole),
/// so a uniformly random entry is O(1); buckets are chains through `slots` in a power-of-two
/// array, so `scan` can use Redis' reverse-binary cursor, which returns every entry present for
/// the whole scan even if the table grows or shrinks between calls.
struct ByteTable<Value> {
    /// One entry and the next slot in its bucket's chain (-1 ends it).
    struct Slot {
        var key: [UInt8]
        var value: Value
        var hash: UInt64
        var next: Int32
    }

    /// The entries, dense, in no particular order.
    private(set) var slots: [Slot] = []
    /// The first slot of each bucket's chain, -1 for an empty bucket; a power of two long.
    private var buckets: [Int32] = Array(repeating: -1, count: 8)
    /// The hash seed: one per process (the standard library's `Hasher` is also seeded per
    /// process), so a table decoded again from the same entries places them the same way and a
    /// SCAN cursor from one decode stays valid in the next.
    private let seed: UInt64

    /// An empty table with room for `capacity` entries before it rehashes.
    init(capacity: Int = 0) {
        seed = byteTableSeed
        let size = ByteTable.bucketCount(for: capacity)
        buckets = Array(repeating: -1, count: size)
        slots.reserveCapacity(capacity)
    }

    /// How many entries the table holds.
    var count: Int { slots.count }

    /// The smallest power of two at least `n` (and at least 8).
    private static func bucketCount(for n: Int) -> Int {
        var size = 8
        while size < n { size <<= 1 }
        return size
    }

    /// The seeded hash of `key` (SipHash through the standard library's `Hasher`).
    @inline(__always)
    private func hash(_ key: [UInt8]) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(seed)
        key.withUnsafeBytes { hasher.combine(bytes: $0) }
        return UInt64(UInt(bitPattern: hasher.finalize()))
    }

    /// The slot holding `key`, if any.
    func index(of key: [UInt8]) -> Int? {
        let h = hash(key)
        var i = buckets[Int(h & UInt64(buckets.count - 1))]
        while i >= 0 {
            let slot = slots[Int(i)]
            if slot.hash == h && slot.key == key { return Int(i) }
            i = slot.next
        }
        return nil
    }

    /// The value for `key`, if present.
    subscript(key: [UInt8]) -> Value? {
        guard let i = index(of: key) else { return nil }
        return slots[i].value
    }

    /// Replaces the value in slot `index`.
    mutating func setValue(_ value: Value, atSlot index: Int) { slots[index].value = value }

    /// Adds `key` (which must be absent) with `value`; returns its slot.
    @discardableResult
    mutating func insertNew(_ key: [UInt8], _ value: Value) -> Int {
        if slots.count >= buckets.count { rehash(to: buckets.count * 2) }
        let h = hash(key)
        let b = Int(h & UInt64(buckets.count - 1))
        slots.append(Slot(key: key, value: value, hash: h, next: buckets[b]))
        buckets[b] = Int32(slots.count - 1)
        return slots.count - 1
    }

    /// Removes `key`; returns its value if it was present.
    @discardableResult
    mutating func remove(_ key: [UInt8]) -> Value? {
        guard let i = index(of: key) else { return nil }
        return removeSlot(i)
    }

    /// Removes the entry in slot `index` and returns its value; the last slot moves into it.
    @discardableResult
    mutating func removeSlot(_ index: Int) -> Value {
        unlink(index)
        let last = slots.count - 1
        if index != last {
            // Point whatever referenced the last slot at its new place.
            let b = Int(slots[last].hash & UInt64(buckets.count - 1))
            if buckets[b] == Int32(last) {
                buckets[b] = Int32(index)
            } else {
                var p = Int(buckets[b])
                while slots[p].next != Int32(last) { p = Int(slots[p].next) }
                slots[p].next = Int32(index)
            }
            slots.swapAt(index, last)
        }
        let value = slots.removeLast().value
        if buckets.count > 8 && slots.count * 8 < buckets.count {
            var compact: [Slot] = []  // give back the slot array's spare capacity too
            compact.reserveCapacity(slots.count)
            compact.append(contentsOf: slots)
            slots = compact
            rehash(to: ByteTable.bucketCount(for: slots.count))
        }
        return value
    }

    /// Takes slot `index` out of its bucket's chain.
    private mutating func unlink(_ index: Int) {
        let b = Int(slots[index].hash & UInt64(buckets.count - 1))
        if buckets[b] == Int32(index) {
            buckets[b] = slots[index].next
        } else {
            var p = Int(buckets[b])
            while slots[p].next != Int32(index) { p = Int(slots[p].next) }
            slots[p].next = slots[index].next
        }
    }

    /// Rebuilds the chains for `size` buckets (amortized O(1) per insert or removal, as Redis').
    private mutating func rehash(to size: Int) {
        buckets = Array(repeating: -1, count: size)
        let mask = UInt64(size - 1)
        for i in slots.indices {
            let b = Int(slots[i].hash & mask)
            slots[i].next = buckets[b]
            buckets[b] = Int32(i)
        }
    }

    /// Calls `body` with the slots of the buckets the cursor visits next, at least `count`
    /// buckets' worth unless the scan ends; returns the next cursor, 0 when the scan is done.
    /// The cursor is Redis' `dictScan` cursor: the bucket index with its bits reversed,
    /// incremented, so every entry present from the first call to the last is visited at least once.
    func scan(cursor: UInt64, count: Int, _ body: (Slot) -> Void) -> UInt64 {
        let mask = UInt64(buckets.count - 1)
        var v = cursor
        var visited = 0
        repeat {
            var i = buckets[Int(v & mask)]
            while i >= 0 {
                body(slots[Int(i)])
                i = slots[Int(i)].next
                visited += 1
            }
            v |= ~mask
            v = reverseBits(v)
            v &+= 1
            v = reverseBits(v)
        } while v != 0 && visited < count
        return v
    }

    /// The heap bytes of the table itself (slots and buckets), not counting the keys' and
    /// values' own storage, which the owner accounts for as entries come and go.
    var memoryBytes: Int {
        ByteCost.array(capacity: slots.capacity, stride: MemoryLayout<Slot>.stride)
            + ByteCost.array(capacity: buckets.capacity, stride: 4)
    }
}

extension ByteTable: Sendable where Value: Sendable {}
extension ByteTable.Slot: Sendable where Value: Sendable {}

/// `v` with its 64 bits in reverse order.
@inline(__always)
func reverseBits(_ v: UInt64) -> UInt64 {
    var x = v
    x = ((x >> 1) & 0x5555_5555_5555_5555) | ((x & 0x5555_5555_5555_5555) << 1)
    x = ((x >> 2) & 0x3333_3333_3333_3333) | ((x & 0x3333_3333_3333_3333) << 2)
    x = ((x >> 4) & 0x0F0F_0F0F_0F0F_0F0F) | ((x & 0x0F0F_0F0F_0F0F_0F0F) << 4)
    return x.byteSwapped
}

/// The seed every `ByteTable` of this process hashes with.
private let byteTableSeed = UInt64.random(in: .min ... .max)
