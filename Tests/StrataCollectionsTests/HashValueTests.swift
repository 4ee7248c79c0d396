import Testing
@testable import StrataCollections

@Suite struct HashValueTests {
    /// Random HSET/HDEL/HINCRBY/HGET sequences against a dictionary, for small and default limits.
    @Test(arguments: [1 as UInt64, 2, 3])
    func randomOperationsMatchModel(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let limits = seed == 3 ? CollectionLimits() : smallLimits()
        var hash = HashValue()
        var model: [[UInt8]: [UInt8]] = [:]
        for step in 0..<4000 {
            let field = rng.element(pool: 60, longEvery: seed == 2 ? 200 : 0)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...4:
                let value = rng.element()
                #expect(hash.set(field, value, limits: limits) == (model[field] == nil))
                model[field] = value
            case 5, 6:
                #expect(hash.remove(field) == (model.removeValue(forKey: field) != nil))
            case 7:
                let current = model[field].map { RedisInteger.parse($0) }
                do {
                    let v = try hash.incrementInteger(field, by: 5, limits: limits)
                    #expect(current != .some(nil))
                    model[field] = RedisInteger.format(v)
                } catch {
                    #expect(error == CollectionCommandError("hash value is not an integer"))
                    #expect(current == .some(nil))
                }
            default:
                #expect(hash.get(field) == model[field])
                #expect(hash.valueLength(field) == (model[field]?.count ?? 0))
            }
            #expect(hash.count == model.count)
            if step % 500 == 0 {
                #expect(hash.memoryBytes == WalkedMemory.of(hash))
                #expect(Dictionary(uniqueKeysWithValues: hash.entries.map { ($0.field, $0.value) }) == model)
            }
        }
        let loaded = try HashValue(deserializing: hash.serialize())
        #expect(loaded.encodingName == hash.encodingName)
        #expect(Dictionary(uniqueKeysWithValues: loaded.entries.map { ($0.field, $0.value) }) == model)
    }

    @Test func convertsAtTheEntryThresholdAndNeverBack() {
        var limits = CollectionLimits()
        limits.hashMaxListpackEntries = 3
        var hash = HashValue()
        for i in 0..<3 { hash.set(b("f\(i)"), b("v"), limits: limits) }
        #expect(hash.encodingName == "listpack")
        hash.set(b("f3"), b("v"), limits: limits)
        #expect(hash.encodingName == "hashtable")
        for i in 0..<4 { hash.remove(b("f\(i)")) }
        #expect(hash.isEmpty && hash.encodingName == "hashtable")
    }

    @Test func convertsOnALongFieldOrValue() {
        let limits = CollectionLimits()
        var hash = HashValue()
        hash.set(b("f"), Array(repeating: 1, count: 64), limits: limits)
        #expect(hash.encodingName == "listpack")
        hash.set(b("g"), Array(repeating: 1, count: 65), limits: limits)
        #expect(hash.encodingName == "hashtable")
        var other = HashValue()
        other.set(Array(repeating: 1, count: 65), b("v"), limits: limits)
        #expect(other.encodingName == "hashtable")
    }

    @Test func incrementOverflowAndRedisIntegerForms() throws {
        let limits = CollectionLimits()
        var hash = HashValue()
        hash.set(b("n"), b("9223372036854775806"), limits: limits)
        #expect(try hash.incrementInteger(b("n"), by: 1, limits: limits) == Int64.max)
        #expect(throws: CollectionCommandError("increment or decrement would overflow")) {
            try hash.incrementInteger(b("n"), by: 1, limits: limits)
        }
        for bad in [" 1", "01", "+1", "1.0", "", "-0", "9223372036854775808"] {
            hash.set(b("x"), b(bad), limits: limits)
            #expect(throws: CollectionCommandError("hash value is not an integer")) {
                try hash.incrementInteger(b("x"), by: 1, limits: limits)
            }
        }
        #expect(RedisInteger.parse(b("-9223372036854775808")) == Int64.min)
        let floatResult = hash.update(b("f"), limits: limits) { old in (old ?? []) + b("1.5") }
        #expect(floatResult == b("1.5") && hash.get(b("f")) == b("1.5"))
    }

    /// Every field present for the whole scan is returned, while fields come and go and the
    /// table grows and shrinks between calls.
    @Test func scanReturnsEveryStableFieldDespiteChurn() {
        var rng = SeededRandom(seed: 9)
        let limits = CollectionLimits()
        var hash = HashValue()
        for i in 0..<2000 { hash.set(b("stable\(i)"), b("v"), limits: limits) }
        var seen = Set<[UInt8]>()
        var cursor: UInt64 = 0
        var calls = 0
        var churn = 0
        repeat {
            let step = hash.scan(cursor: cursor, count: 10)
            for e in step.entries { seen.insert(e.field) }
            cursor = step.cursor
            calls += 1
            // Grow, then shrink: the table doubles and halves mid-scan.
            for _ in 0..<Int.random(in: 0..<40, using: &rng) {
                if calls < 150 {
                    hash.set(b("churn\(churn)"), b("v"), limits: limits)
                    churn += 1
                } else if churn > 0 {
                    churn -= 1
                    hash.remove(b("churn\(churn)"))
                }
            }
        } while cursor != 0
        for i in 0..<2000 { #expect(seen.contains(b("stable\(i)"))) }
        #expect(calls > 10)
    }

    @Test func randomFieldsDistinctOrRepeated() {
        var rng = SeededRandom(seed: 4)
        for limits in [CollectionLimits(), smallLimits()] {
            var hash = HashValue()
            for i in 0..<50 { hash.set(b("f\(i)"), b("v\(i)"), limits: limits) }
            let distinct = hash.randomEntries(count: 20, using: &rng)
            #expect(distinct.count == 20 && Set(distinct.map(\.field)).count == 20)
            #expect(distinct.allSatisfy { hash.get($0.field) == $0.value })
            #expect(hash.randomEntries(count: 80, using: &rng).count == 50)
            #expect(hash.randomEntries(count: -80, using: &rng).count == 80)
        }
    }

    @Test func memoryGrowsAndShrinksWithContent() {
        let limits = CollectionLimits()
        var hash = HashValue()
        let empty = hash.memoryBytes
        for i in 0..<1000 { hash.set(b("field\(i)"), Array(repeating: 7, count: 100), limits: limits) }
        #expect(hash.memoryBytes > 1000 * 100)
        let full = hash.memoryBytes
        for i in 0..<1000 { hash.remove(b("field\(i)")) }
        #expect(hash.memoryBytes < full / 10)
        #expect(empty < 100)
    }
}
