/// A storage key with its XXH64 computed once, outside the writer's lock.
struct PendingKey: Equatable, Sendable {
    let bytes: [UInt8]
    let hash: UInt64

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.hash = bytes.withUnsafeBytes { StableHash.hash($0) }
    }

    static func == (a: PendingKey, b: PendingKey) -> Bool { a.hash == b.hash && a.bytes == b.bytes }
}

/// The writer's queued operations, the newest per storage key: an open-addressing table with
/// linear probing, placed by each key's XXH64, because a `Dictionary` would hash that hash again
/// with SipHash on every enqueue, under the lock both event loops contend for.
///
/// Keys are only ever removed all at once (the writer takes a whole batch), so the table needs
/// no tombstones; it stays at most three quarters full.
struct PendingTable: Sendable, Sequence {
    struct Entry: Sendable {
        var key: PendingKey
        var value: Writer.Queued
    }

    /// A power-of-two count of slots (or none yet); nil marks an empty slot.
    private var entries: [Entry?] = []
    /// Keys held.
    private(set) var count = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    /// The slot holding `key`, or else the empty slot where it belongs. The table must have slots.
    @inline(__always)
    private func slot(of key: PendingKey) -> (index: Int, found: Bool) {
        let mask = entries.count - 1
        var index = Int(truncatingIfNeeded: key.hash) & mask
        while entries[index] != nil {
            if entries[index]!.key == key { return (index, true) }
            index = (index + 1) & mask
        }
        return (index, false)
    }

    /// The operation queued for `key`, if any.
    subscript(key: PendingKey) -> Writer.Queued? {
        guard count > 0 else { return nil }
        let (index, found) = slot(of: key)
        return found ? entries[index]!.value : nil
    }

    /// Queues `value` for `key`, replacing what was queued for it.
    mutating func set(_ value: Writer.Queued, for key: PendingKey) {
        if (count + 1) * 4 > entries.count * 3 { grow() }
        let (index, found) = slot(of: key)
        if found {
            entries[index]!.value = value
        } else {
            entries[index] = Entry(key: key, value: value)
            count += 1
        }
    }

    /// Drops every key and gives the slots back (as `Dictionary.removeAll()` does).
    mutating func removeAll() {
        entries = []
        count = 0
    }

    private mutating func grow() {
        let old = entries
        entries = [Entry?](repeating: nil, count: Swift.max(16, old.count * 2))
        for case let entry? in old {
            entries[slot(of: entry.key).index] = entry
        }
    }

    struct Iterator: IteratorProtocol {
        fileprivate var base: IndexingIterator<[Entry?]>

        mutating func next() -> (key: PendingKey, value: Writer.Queued)? {
            while let slot = base.next() {
                if let entry = slot { return (entry.key, entry.value) }
            }
            return nil
        }
    }

    func makeIterator() -> Iterator { Iterator(base: entries.makeIterator()) }
}
