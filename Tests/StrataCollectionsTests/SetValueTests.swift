import Testing
@testable import StrataCollections

@Suite struct SetValueTests {
    /// Random SADD/SREM/SISMEMBER/SPOP sequences against a `Set`, crossing every encoding.
    @Test(arguments: [1 as UInt64, 2, 3])
    func randomOperationsMatchModel(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let limits = seed == 3 ? CollectionLimits() : smallLimits()
        var set = SetValue()
        var model = Set<[UInt8]>()
        var encodings = Set<String>()
        for step in 0..<4000 {
            let m = seed == 1 ? b(String(Int.random(in: -30..<30, using: &rng))) : rng.element(pool: 50, longEvery: 300)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...4: #expect(set.add(m, limits: limits) == model.insert(m).inserted)
            case 5, 6: #expect(set.remove(m) == (model.remove(m) != nil))
            case 7:
                let popped = set.popRandom(count: 2, using: &rng)
                #expect(popped.count == min(2, model.count))
                for p in popped { #expect(model.remove(p) != nil) }
            default: #expect(set.contains(m) == model.contains(m))
            }
            #expect(set.count == model.count)
            encodings.insert(set.encodingName)
            if step % 400 == 0 {
                #expect(Set(set.members) == model)
                #expect(set.memoryBytes == WalkedMemory.of(set))
            }
            if step % 1000 == 999 {
                let loaded = try SetValue(deserializing: set.serialize())
                #expect(loaded.encodingName == set.encodingName && Set(loaded.members) == model)
            }
        }
        if seed == 2 { #expect(encodings.isSuperset(of: ["intset", "listpack", "hashtable"])) }
    }

    @Test func encodingTransitionsAsRedis72() {
        var limits = CollectionLimits()
        limits.setMaxIntsetEntries = 4
        limits.setMaxListpackEntries = 3
        var ints = SetValue()
        for i in 0..<4 { ints.add(b("\(i)"), limits: limits) }
        #expect(ints.encodingName == "intset")
        #expect(ints.members == [b("0"), b("1"), b("2"), b("3")])
        ints.add(b("4"), limits: limits)
        #expect(ints.encodingName == "hashtable")

        var mixed = SetValue()
        mixed.add(b("1"), limits: limits)
        mixed.add(b("a"), limits: limits)
        #expect(mixed.encodingName == "listpack")
        mixed.add(b("b"), limits: limits)
        #expect(mixed.encodingName == "listpack")
        mixed.add(b("c"), limits: limits)
        #expect(mixed.encodingName == "hashtable")

        var long = SetValue()
        long.add(Array(repeating: 65, count: 65), limits: CollectionLimits())
        #expect(long.encodingName == "hashtable")
        #expect(SetValue(sizeHint: 1, firstMember: b("x"), limits: CollectionLimits()).encodingName == "listpack")
        #expect(SetValue(sizeHint: 600, firstMember: b("1"), limits: CollectionLimits()).encodingName == "hashtable")
        #expect(SetValue(sizeHint: 1, firstMember: b("-12"), limits: CollectionLimits()).encodingName == "intset")
        // Not canonical integers: an intset would lose their spelling.
        for s in ["01", "+1", " 1", "1 ", "-0"] {
            var x = SetValue()
            x.add(b(s), limits: CollectionLimits())
            #expect(x.encodingName == "listpack" && x.members == [b(s)])
        }
    }

    @Test func algebraMatchesModel() {
        var rng = SeededRandom(seed: 5)
        let limits = smallLimits()
        var sets: [SetValue] = []
        var models: [Set<[UInt8]>] = []
        for _ in 0..<4 {
            var s = SetValue()
            var m = Set<[UInt8]>()
            for _ in 0..<Int.random(in: 0..<30, using: &rng) {
                let e = rng.element(pool: 25)
                s.add(e, limits: limits)
                m.insert(e)
            }
            sets.append(s)
            models.append(m)
        }
        #expect(Set(SetValue.intersection(sets)) == models.dropFirst().reduce(models[0]) { $0.intersection($1) })
        #expect(Set(SetValue.union(sets)) == models.reduce(Set()) { $0.union($1) })
        #expect(Set(SetValue.difference(sets)) == models.dropFirst().reduce(models[0]) { $0.subtracting($1) })
        #expect(SetValue.intersectionCount(Array(sets[0...1]), limit: 1) == min(1, models[0].intersection(models[1]).count))
        let stored = SetValue(members: SetValue.union(sets), limits: limits)
        #expect(Set(stored.members) == models.reduce(Set()) { $0.union($1) })
    }

    @Test func scanAndRandomMembers() {
        var rng = SeededRandom(seed: 6)
        var set = SetValue()
        for i in 0..<3000 { set.add(b("m\(i)"), limits: CollectionLimits()) }
        var seen = Set<[UInt8]>()
        var cursor: UInt64 = 0
        repeat {
            let step = set.scan(cursor: cursor, count: 50)
            seen.formUnion(step.members)
            cursor = step.cursor
        } while cursor != 0
        #expect(seen.count == 3000)
        let picks = set.randomMembers(count: 100, using: &rng)
        #expect(Set(picks).count == 100 && picks.allSatisfy { set.contains($0) })
        #expect(set.randomMembers(count: -5000, using: &rng).count == 5000)
    }
}
