import Testing

@testable import StrataStore

@Suite struct PendingTableTests {
    /// Random sets, lookups, clears and full iterations against a Dictionary: few distinct keys,
    /// so keys are overwritten often and probe sequences collide in small tables.
    @Test func matchesADictionaryUnderRandomOperations() {
        var generator = SystemRandomNumberGenerator()
        var table = PendingTable()
        var model: [[UInt8]: UInt64] = [:]
        for step in 0..<50_000 {
            let key = Array("k\(Int.random(in: 0..<600, using: &generator))".utf8)
            switch Int.random(in: 0..<100, using: &generator) {
            case 0:
                table.removeAll()
                model.removeAll()
            case 1..<60:
                let sequence = UInt64(step)
                table.set(Writer.Queued(operation: .put(key), sequence: sequence, keyHash: 0), for: PendingKey(key))
                model[key] = sequence
            default:
                #expect(table[PendingKey(key)]?.sequence == model[key])
            }
            #expect(table.count == model.count)
            #expect(table.isEmpty == model.isEmpty)
            if step % 5_000 == 0 {
                var seen: [[UInt8]: UInt64] = [:]
                for (key, queued) in table { seen[key.bytes] = queued.sequence }
                #expect(seen == model)
            }
        }
    }

    @Test func anEmptyTableHoldsNothing() {
        let table = PendingTable()
        #expect(table[PendingKey([1, 2, 3])] == nil)
        #expect(table.isEmpty)
        #expect(Array(table).isEmpty)
    }
}
