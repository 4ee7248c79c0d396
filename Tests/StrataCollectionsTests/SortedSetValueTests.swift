import Testing
@testable import StrataCollections

@Suite struct SortedSetValueTests {
    /// The model: pairs kept sorted by (score, member).
    struct Model {
        var items: [ScoredMember] = []

        func index(of m: [UInt8]) -> Int? { items.firstIndex { $0.member == m } }

        mutating func set(_ m: [UInt8], _ s: Double) {
            if let i = index(of: m) { items.remove(at: i) }
            let at = items.firstIndex { !ScoredMember.isBefore($0, s, m) } ?? items.count
            items.insert(ScoredMember(member: m, score: s), at: at)
        }

        func byScore(_ lo: ScoreBound, _ hi: ScoreBound) -> [ScoredMember] {
            items.filter { lo.admitsAsMin($0.score) && !hi.exceedsAsMax($0.score) }
        }

        func byLex(_ lo: LexBound, _ hi: LexBound) -> [ScoredMember] {
            items.filter { lo.admitsAsMin($0.member) && !hi.exceedsAsMax($0.member) }
        }
    }

    /// A window of `a` as LIMIT offset count applies it.
    static func window(_ a: [ScoredMember], reverse: Bool, offset: Int, limit: Int?) -> [ScoredMember] {
        let ordered = reverse ? Array(a.reversed()) : a
        guard offset < ordered.count else { return [] }
        let rest = ordered[offset...]
        guard let limit, limit >= 0 else { return Array(rest) }
        return Array(rest.prefix(limit))
    }

    static func scoreBound(_ rng: inout SeededRandom) -> ScoreBound {
        let v: Double = [-.infinity, .infinity, -1, 0, 2.5, 5, 7].randomElement(using: &rng)!
        return ScoreBound(v, exclusive: Bool.random(using: &rng))
    }

    static func lexBound(_ rng: inout SeededRandom) -> LexBound {
        let m = rng.element(pool: 30)
        return [.negativeInfinity, .positiveInfinity, .inclusive(m), .exclusive(m)].randomElement(using: &rng)!
    }

    /// Random ZADD (every flag), ZREM, ZRANGE by rank/score/lex, ZCOUNT, ZLEXCOUNT, ZRANK,
    /// ZREMRANGEBY*, ZPOPMIN/MAX against the model.
    @Test(arguments: [1 as UInt64, 2, 3])
    func randomOperationsMatchModel(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let limits = seed == 3 ? CollectionLimits() : smallLimits()
        var zset = SortedSetValue()
        var model = Model()
        for step in 0..<4000 {
            let m = rng.element(pool: 40, longEvery: seed == 2 ? 300 : 0)
            // Equal scores are common so the member order matters; lex tests use score 0 (seed 1).
            let score = seed == 1 ? 0 : Double(Int.random(in: -3...9, using: &rng)) / 2
            let reverse = Bool.random(using: &rng)
            let offset = Int.random(in: 0...3, using: &rng)
            let limit: Int? = [nil, -1, 0, 2, 5].randomElement(using: &rng)!
            switch Int.random(in: 0..<14, using: &rng) {
            case 0...4:
                var options = ZAddOptions()
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: options.nx = true
                case 1: options.xx = true
                case 2: options.gt = true
                case 3: options.lt = true
                case 4: options.incr = true
                default: break
                }
                let current = model.index(of: m).map { model.items[$0].score }
                let expected: ZAddOutcome
                var newScore = score
                if let current {
                    if options.incr { newScore += current }
                    if options.nx || (options.lt && newScore >= current) || (options.gt && newScore <= current) {
                        expected = .skipped
                    } else {
                        expected = newScore == current ? .unchanged(newScore) : .updated(newScore)
                    }
                } else {
                    expected = options.xx ? .skipped : .added(score)
                }
                #expect(try zset.add(m, score: score, options: options, limits: limits) == expected)
                if let s = expected.score { model.set(m, s) }
            case 5:
                let i = model.index(of: m)
                #expect(zset.remove(m) == (i != nil))
                if let i { model.items.remove(at: i) }
            case 6:
                let lo = SortedSetValueTests.scoreBound(&rng), hi = SortedSetValueTests.scoreBound(&rng)
                #expect(zset.range(byScore: lo, hi, reverse: reverse, offset: offset, limit: limit)
                    == SortedSetValueTests.window(model.byScore(lo, hi), reverse: reverse, offset: offset, limit: limit))
                #expect(zset.count(byScore: lo, hi) == model.byScore(lo, hi).count)
            case 7 where seed == 1:
                let lo = SortedSetValueTests.lexBound(&rng), hi = SortedSetValueTests.lexBound(&rng)
                #expect(zset.range(byLex: lo, hi, reverse: reverse, offset: offset, limit: limit)
                    == SortedSetValueTests.window(model.byLex(lo, hi), reverse: reverse, offset: offset, limit: limit))
                #expect(zset.count(byLex: lo, hi) == model.byLex(lo, hi).count)
            case 8:
                let n = model.items.count
                let i = Int.random(in: -(n + 2)...(n + 2), using: &rng), j = Int.random(in: -(n + 2)...(n + 2), using: &rng)
                let forward = ListValueTestsRange.range(model.items, i, j)
                let backward = ListValueTestsRange.range(Array(model.items.reversed()), i, j)
                #expect(zset.range(byRank: i, j) == forward)
                #expect(zset.range(byRank: i, j, reverse: true) == backward)
            case 9:
                let i = model.index(of: m)
                #expect(zset.rank(of: m) == i)
                #expect(zset.rank(of: m, reverse: true) == i.map { model.items.count - 1 - $0 })
                #expect(zset.score(of: m) == i.map { model.items[$0].score })
            case 10 where Int.random(in: 0..<5, using: &rng) == 0:
                let lo = SortedSetValueTests.scoreBound(&rng), hi = SortedSetValueTests.scoreBound(&rng)
                let doomed = model.byScore(lo, hi)
                #expect(zset.removeRange(byScore: lo, hi) == doomed.count)
                model.items.removeAll { doomed.contains($0) }
            case 11 where Int.random(in: 0..<5, using: &rng) == 0:
                let n = model.items.count
                let i = Int.random(in: -n...n, using: &rng), j = Int.random(in: -n...n, using: &rng)
                let doomed = ListValueTestsRange.range(model.items, i, j)
                #expect(zset.removeRange(byRank: i, j) == doomed.count)
                model.items.removeAll { doomed.contains($0) }
            case 12 where seed == 1 && Int.random(in: 0..<5, using: &rng) == 0:
                let lo = SortedSetValueTests.lexBound(&rng), hi = SortedSetValueTests.lexBound(&rng)
                let doomed = model.byLex(lo, hi)
                #expect(zset.removeRange(byLex: lo, hi) == doomed.count)
                model.items.removeAll { doomed.contains($0) }
            case 13:
                let k = Int.random(in: 0...2, using: &rng)
                if Bool.random(using: &rng) {
                    #expect(zset.popMin(count: k) == Array(model.items.prefix(k)))
                    model.items.removeFirst(min(k, model.items.count))
                } else {
                    #expect(zset.popMax(count: k) == Array(model.items.suffix(k).reversed()))
                    model.items.removeLast(min(k, model.items.count))
                }
            default:
                break
            }
            #expect(zset.count == model.items.count)
            if step % 400 == 0 {
                #expect(zset.memoryBytes == WalkedMemory.of(zset))
                #expect(zset.entries == model.items)
                let loaded = try SortedSetValue(deserializing: zset.serialize())
                #expect(loaded.entries == model.items && loaded.encodingName == zset.encodingName)
            }
        }
    }

    @Test func incrementToNaNIsRejected() throws {
        var zset = SortedSetValue()
        try zset.add(b("a"), score: .infinity, limits: CollectionLimits())
        #expect(throws: CollectionCommandError("resulting score is not a number (NaN)")) {
            try zset.add(b("a"), score: -.infinity, options: ZAddOptions(incr: true), limits: CollectionLimits())
        }
        #expect(zset.score(of: b("a")) == .infinity)
    }

    /// A listpack keeps -0 as +0 (Redis stores listpack scores as text, which drops the sign);
    /// a skip list keeps the double as given.
    @Test func negativeZeroLosesItsSignOnlyInAListpack() throws {
        var small = SortedSetValue()
        try small.add(b("a"), score: -0.0, limits: CollectionLimits())
        #expect(small.score(of: b("a"))?.sign == .plus)
        try small.add(b("a"), score: -1, limits: CollectionLimits())
        try small.add(b("a"), score: -0.0, limits: CollectionLimits())
        #expect(small.score(of: b("a"))?.sign == .plus)
        var big = SortedSetValue(sizeHint: 1000, longestMember: 1, limits: CollectionLimits())
        try big.add(b("a"), score: -0.0, limits: CollectionLimits())
        #expect(big.encodingName == "skiplist" && big.score(of: b("a"))?.sign == .minus)
        // INCR by 0 answers the sum (+0, as Redis) and leaves the stored -0 alone.
        let outcome = try big.add(b("a"), score: 0, options: ZAddOptions(incr: true), limits: CollectionLimits())
        #expect(outcome.score?.sign == .plus && big.score(of: b("a"))?.sign == .minus)
    }

    @Test func convertsAtThresholdsAndNeverBack() throws {
        var limits = CollectionLimits()
        limits.zsetMaxListpackEntries = 3
        var zset = SortedSetValue()
        for i in 0..<3 { try zset.add(b("m\(i)"), score: Double(i), limits: limits) }
        #expect(zset.encodingName == "listpack")
        try zset.add(b("m3"), score: 3, limits: limits)
        #expect(zset.encodingName == "skiplist")
        _ = zset.popMin(count: 4)
        #expect(zset.isEmpty && zset.encodingName == "skiplist")
        var long = SortedSetValue()
        try long.add(Array(repeating: 1, count: 65), score: 1, limits: CollectionLimits())
        #expect(long.encodingName == "skiplist")
        #expect(SortedSetValue(sizeHint: 129, longestMember: 1, limits: CollectionLimits()).encodingName == "skiplist")
    }

    /// A copy shares nothing mutable: changing one leaves the other as it was.
    @Test func copiesAreIndependent() throws {
        var a = SortedSetValue(sizeHint: 1000, longestMember: 1, limits: CollectionLimits())
        for i in 0..<300 { try a.add(b("m\(i)"), score: Double(i), limits: CollectionLimits()) }
        let b0 = a
        try a.add(b("m0"), score: 1000, limits: CollectionLimits())
        _ = a.popMax(count: 5)
        #expect(b0.score(of: b("m0")) == 0 && b0.count == 300 && a.count == 295)
    }

    /// A 1M-member skip list: one insert, rank, score-range start and rank lookup each step over
    /// O(log n) nodes (counted), and mutating an unshared set never copies it.
    @Test func millionMemberOperationsAreLogarithmic() throws {
        let limits = CollectionLimits()
        var zset = SortedSetValue(sizeHint: 1_000_000, longestMember: 10, limits: limits)
        for i in 0..<1_000_000 { try zset.add(b("m\(i)"), score: Double(i % 1000), limits: limits) }
        #expect(zset.encodingName == "skiplist" && zset.count == 1_000_000)
        // Holds no reference to the skip list across mutations (that would force a copy).
        func list() -> ObjectIdentifier? {
            guard case .skiplist(let s) = zset.storage else { return nil }
            return ObjectIdentifier(s)
        }
        func totalVisits() -> Int {
            guard case .skiplist(let s) = zset.storage else { return 0 }
            return s.visits
        }
        func visits(_ body: () throws -> Void) rethrows -> Int {
            let before = totalVisits()
            try body()
            return totalVisits() - before
        }
        let identity = list()
        let insert = try visits { try zset.add(b("new"), score: 500.5, limits: limits) }
        let rank = visits { #expect(zset.rank(of: b("new")) == 501_000) }
        let range = visits {
            #expect(zset.range(byScore: ScoreBound(999), ScoreBound(.infinity), offset: 10, limit: 5).count == 5)
        }
        let byRank = visits { #expect(zset.range(byRank: 700_000, 700_009).count == 10) }
        let update = try visits { try zset.add(b("m5"), score: 999.5, limits: limits) }
        var removed = false
        let remove = visits { removed = zset.remove(b("new")) }
        #expect(removed)
        // A copy would re-insert every member: millions of visits, not hundreds.
        for n in [insert, rank, range, byRank, update, remove] { #expect(n > 0 && n < 600) }
        #expect(list() == identity)
        #expect(zset.memoryBytes > 1_000_000 * 50)
    }
}

/// Redis' rank normalization over an array (shared by the rank tests).
enum ListValueTestsRange {
    static func range<T>(_ a: [T], _ start: Int, _ stop: Int) -> [T] {
        var lo = start < 0 ? start + a.count : start
        var hi = stop < 0 ? stop + a.count : stop
        if lo < 0 { lo = 0 }
        if lo > hi || lo >= a.count { return [] }
        if hi >= a.count { hi = a.count - 1 }
        return Array(a[lo...hi])
    }
}
