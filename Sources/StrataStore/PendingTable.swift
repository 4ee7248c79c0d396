/// A storage key with its XXH64 computed once, outside the writer's lock.
struct PendingKey: Equatable, Sendable {
    let bytes: [UInt8]
    let hash: UInt64

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.hash = bytes.withUnsafeBytes { StableHash.hash($0) }
    }

    init(bytes: [UInt8], hash: UInt64) {
        self.bytes = bytes
        self.hash = hash
    }

    static func == (a: PendingKey, b: PendingKey) -> Bool { a.hash == b.hash && a.bytes == b.bytes }
}

/// The writer's queued operations, the newest per storage key: an open-addressing table with
/// linear probing, placed by each key's XXH64, because a `Dictionary` would hash that hash again
/// with SipHash on every enqueue, under the lock both event loops contend for.
///
/// Probing reads only `tags` (the hash with its low bit set; 0 marks an empty slot) and compares
/// key bytes only on a tag match. Keys are only ever removed all at once (the writer takes a
/// whole batch), so the table needs no tombstones; it stays at most three quarters full.
struct PendingTable: Sendable, Sequence {
    struct Entry: Sendable {
        var key: PendingKey
        var value: Writer.Queued
    }

    /// What an empty slot's entry holds (empty arrays allocate nothing).
    private static let vacant = Entry(
        key: PendingKey(bytes: [], hash: 0), value: Writer.Queued(operation: .delete(tombstone: nil), sequence: 0, keyHash: 0))

    /// A power-of-two count of slots (or none yet), in step with `entries`.
    private var tags: [UInt64] = []
    private var entries: [Entry] = []
    /// Keys held.
    private(set) var count = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private static func tag(_ hash: UInt64) -> UInt64 { hash | 1 }

    /// The slot holding `key`, or else the empty slot where it belongs. The table must have slots.
    @inline(__always)
    private func slot(of key: PendingKey) -> (index: Int, found: Bool) {
        let mask = tags.count - 1
        let tag = Self.tag(key.hash)
        var index = Int(truncatingIfNeeded: key.hash) & mask
        while true {
            let slotTag = tags[index]
            if slotTag == 0 { return (index, false) }
            if slotTag == tag && entries[index].key.bytes == key.bytes { return (index, true) }
            index = (index + 1) & mask
        }
    }

    /// The operation queued for `key`, if any.
    subscript(key: PendingKey) -> Writer.Queued? {
        guard count > 0 else { return nil }
        let (index, found) = slot(of: key)
        return found ? entries[index].value : nil
    }

    /// Queues `value` for `key`, replacing what was queued for it.
    mutating func set(_ value: Writer.Queued, for key: PendingKey) {
        if (count + 1) * 4 > tags.count * 3 { grow() }
        let (index, found) = slot(of: key)
        if found {
            entries[index].value = value
        } else {
            tags[index] = Self.tag(key.hash)
            entries[index] = Entry(key: key, value: value)
            count += 1
        }
    }

    /// Drops every key and gives the slots back (as `Dictionary.removeAll()` does).
    mutating func removeAll() {
        tags = []
        entries = []
        count = 0
    }

    /// Drops every key but keeps the slots, so a table refilled to a similar size does not grow
    /// (and rehash) again: the writer's tables fill under the lock every writer contends for.
    mutating func removeAll(keepingCapacity: Bool) {
        guard keepingCapacity, count > 0 else {
            if !keepingCapacity { removeAll() }
            return
        }
        for index in tags.indices where tags[index] != 0 {
            tags[index] = 0
            entries[index] = Self.vacant
        }
        count = 0
    }

    /// Slots held (a power of two, or 0).
    var capacity: Int { tags.count }

    private mutating func grow() {
        let oldTags = tags
        let oldEntries = entries
        let capacity = Swift.max(16, oldTags.count * 2)
        tags = [UInt64](repeating: 0, count: capacity)
        entries = [Entry](repeating: Self.vacant, count: capacity)
        for old in oldTags.indices where oldTags[old] != 0 {
            var index = Int(truncatingIfNeeded: oldEntries[old].key.hash) & (capacity - 1)
            while tags[index] != 0 { index = (index + 1) & (capacity - 1) }
            tags[index] = oldTags[old]
            entries[index] = oldEntries[old]
        }
    }

    struct Iterator: IteratorProtocol {
        fileprivate let table: PendingTable
        fileprivate var index = 0

        mutating func next() -> (key: PendingKey, value: Writer.Queued)? {
            while index < table.tags.count {
                defer { index += 1 }
                if table.tags[index] != 0 { return (table.entries[index].key, table.entries[index].value) }
            }
            return nil
        }
    }

    func makeIterator() -> Iterator { Iterator(table: self) }
}
