import DequeModule
import StrataStore
import Synchronization

/// Decoded large collections, so a command on a hash, list, set or sorted set already in memory
/// does not decode it again: an entry is used only while its stored bytes are exactly the bytes
/// it was decoded from, so any write (here, by replication, expiry or a flush) retires it.
/// Bounded by `capacity` bytes (the stored bytes plus the decoded structure), oldest out first.
final class CollectionCache: Sendable {
    private struct Item {
        let bytes: [UInt8]
        let value: StoredValue
        let cost: Int
    }

    private struct State {
        var items: [[UInt8]: Item] = [:]
        var order = Deque<[UInt8]>()
        var bytes = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    /// Values smaller than this decode faster than a lookup pays for itself.
    static let minimumBytes = 4096

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The decoded value of `entry`, stored under `key`: from the cache when its bytes match.
    func value(of entry: Entry, key: [UInt8]) throws -> StoredValue {
        guard entry.kind != .string, entry.value.count >= Self.minimumBytes, capacity > 0 else { return try StoredValue(entry) }
        if let hit = state.withLock({ $0.items[key] }), hit.bytes == entry.value { return hit.value }
        let value = try StoredValue(entry)
        remember(key, bytes: entry.value, value: value)
        return value
    }

    /// Keeps a value just written, with the bytes the store now holds for it.
    func remember(_ key: [UInt8], bytes: [UInt8], value: StoredValue) {
        guard bytes.count >= Self.minimumBytes, capacity > 0 else { return forget(key) }
        let cost = bytes.count + value.memoryBytes
        guard cost <= capacity / 4 else { return forget(key) }
        state.withLock { s in
            if let old = s.items.updateValue(Item(bytes: bytes, value: value, cost: cost), forKey: key) {
                s.bytes -= old.cost
            } else {
                s.order.append(key)
            }
            s.bytes += cost
            while s.bytes > capacity, let oldest = s.order.popFirst() {
                if let gone = s.items.removeValue(forKey: oldest) { s.bytes -= gone.cost }
            }
        }
    }

    func forget(_ key: [UInt8]) {
        state.withLock { s in
            if let gone = s.items.removeValue(forKey: key) {
                s.bytes -= gone.cost
                s.order.removeAll { $0 == key }
            }
        }
    }

    /// Bytes held now.
    var bytes: Int { state.withLock { $0.bytes } }
}
