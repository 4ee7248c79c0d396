import NIOCore
import StrataStore

/// SCAN's integer cursors. Redis clients parse the cursor as an integer, while the store
/// continues a scan after a key; this maps one to the other. It keeps the most recent 100,000
/// cursors (oldest dropped first); an unknown cursor restarts nothing and is an error, as in Redis.
final class ScanCursors: Sendable {
    private struct State: Sendable {
        var positions: [UInt64: [UInt8]] = [:]
        var order: [UInt64] = []
        var next: UInt64 = 1
    }

    private let state = Locked(State())
    private let capacity = 100_000

    /// A new cursor that continues after `position`.
    func make(after position: [UInt8]) -> UInt64 {
        state.withLock { s in
            let id = s.next
            s.next += 1
            s.positions[id] = position
            s.order.append(id)
            if s.order.count > capacity {
                let drop = s.order.count - capacity
                for old in s.order.prefix(drop) { s.positions[old] = nil }
                s.order.removeFirst(drop)
            }
            return id
        }
    }

    /// Where cursor `id` continues; nil if unknown.
    func position(_ id: UInt64) -> [UInt8]? {
        state.withLock { $0.positions[id] }
    }
}
