import Testing

@testable import StrataStore

@Suite struct LRUTableTests {
    func k(_ s: String) -> [UInt8] { Array(s.utf8) }

    func set(_ t: inout LRUTable, _ key: [UInt8], _ value: [UInt8], budget: Int, expiry: Int64 = 0) -> (Bool, Int) {
        key.withUnsafeBytes { kb in
            value.withUnsafeBytes { vb in
                t.set(kb, hash: StableHash.hash(kb), value: vb, expiry: expiry, budget: budget)
            }
        }
    }

    func get(_ t: inout LRUTable, _ key: [UInt8], now: Int64 = 0) -> [UInt8]? {
        key.withUnsafeBytes { kb in
            var out: [UInt8]? = nil
            _ = t.get(kb, hash: StableHash.hash(kb), now: now) { v, _, _ in out = [UInt8](v) }
            return out
        }
    }

    @Test func evictsLeastRecentlyUsedFirst() {
        var t = LRUTable(initialCapacity: 8)
        let budget = t.structuralBytes + 4 * LRUTable.charge(keyCount: 2, valueCount: 10)
        for i in 0..<4 { _ = set(&t, k("k\(i)"), [UInt8](repeating: 1, count: 10), budget: budget) }
        #expect(t.count == 4)
        #expect(get(&t, k("k0")) != nil)  // k0 is now the most recent; k1 is the oldest
        let (_, evicted) = set(&t, k("k4"), [UInt8](repeating: 1, count: 10), budget: budget)
        #expect(evicted == 1)
        #expect(get(&t, k("k1")) == nil)
        #expect(get(&t, k("k0")) != nil)
        #expect(get(&t, k("k4")) != nil)
        #expect(t.usedBytes <= budget)
    }

    @Test func refusesValuesLargerThanTheBudgetAndDropsTheOldCopy() {
        var t = LRUTable()
        let budget = t.structuralBytes + 200
        #expect(set(&t, k("a"), [1, 2, 3], budget: budget).0)
        #expect(!set(&t, k("a"), [UInt8](repeating: 0, count: 500), budget: budget).0)
        #expect(get(&t, k("a")) == nil)
    }

    @Test func expiredEntriesAreNeverReturned() {
        var t = LRUTable()
        _ = set(&t, k("a"), [1], budget: 1 << 20, expiry: 100)
        #expect(get(&t, k("a"), now: 99) == [1])
        #expect(get(&t, k("a"), now: 100) == nil)
        #expect(t.count == 0)
        _ = set(&t, k("b"), [1], budget: 1 << 20, expiry: 100)
        #expect(t.sweepExpired(now: 200, limit: 100) == 1)
        #expect(t.count == 0)
    }

    /// A random mix of operations checked against a Dictionary and an explicit LRU list.
    @Test func matchesAModelUnderRandomOperations() {
        var t = LRUTable(initialCapacity: 8)
        var model: [[UInt8]: [UInt8]] = [:]
        var order: [[UInt8]] = []  // least recent first
        let budget = 64 * 1024
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50_000 {
            let key = k("key\(Int.random(in: 0..<600, using: &rng))")
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5:
                let value = [UInt8](repeating: UInt8.random(in: 0...255, using: &rng), count: Int.random(in: 0..<200, using: &rng))
                let structuralBefore = t.structuralBytes
                _ = set(&t, key, value, budget: budget)
                order.removeAll { $0 == key }
                model[key] = value
                order.append(key)
                // Evict from the model exactly what the table evicted (it must be the LRU prefix).
                while model.count > t.count {
                    let victim = order.removeFirst()
                    model[victim] = nil
                }
                _ = structuralBefore
            case 5..<9:
                let got = get(&t, key)
                #expect(got == model[key])
                if got != nil {
                    order.removeAll { $0 == key }
                    order.append(key)
                }
            default:
                let removed = key.withUnsafeBytes { t.remove($0, hash: StableHash.hash($0)) }
                #expect(removed == (model[key] != nil))
                model[key] = nil
                order.removeAll { $0 == key }
            }
            #expect(t.usedBytes <= budget)
            #expect(t.count == model.count)
        }
        // Every key the model holds is in the table with the same value.
        for (key, value) in model { #expect(get(&t, key) == value) }
    }
}
