extension SortedSetValue {
    /// How many members sort before the first one for which `reached` holds (which must turn
    /// true once and stay true along the order): O(log n) on a skip list, O(n) on a listpack.
    func countBefore(where reached: (ScoredMember) -> Bool) -> Int {
        switch storage {
        case .listpack(let lp):
            let all = SortedSetValue.pairs(lp)
            return all.firstIndex(where: reached) ?? all.count
        case .skiplist(let s):
            return s.countBefore { reached(ScoredMember(member: $0.member, score: $0.score)) }
        }
    }

    /// Up to `count` members from 0-based `position`, walking down the order when `reverse`.
    func elements(from position: Int, count: Int, reverse: Bool) -> [ScoredMember] {
        guard count > 0, position >= 0, position < self.count else { return [] }
        switch storage {
        case .listpack(let lp):
            let all = SortedSetValue.pairs(lp)
            if reverse { return Array(all[max(position - count + 1, 0)...position].reversed()) }
            return Array(all[position..<min(position + count, all.count)])
        case .skiplist(let s):
            var out: [ScoredMember] = []
            out.reserveCapacity(count)
            var node: SkipNode? = s.node(at: position)
            while let n = node, out.count < count {
                out.append(ScoredMember(member: n.member, score: n.score))
                node = reverse ? n.backward : n.levels[0].forward
            }
            return out
        }
    }

    /// Every member in order (ZRANGE 0 -1).
    public var entries: [ScoredMember] { elements(from: 0, count: count, reverse: false) }

    /// The 0-based rank of `member` (ZRANK), from the highest when `reverse` (ZREVRANK).
    public func rank(of member: [UInt8], reverse: Bool = false) -> Int? {
        guard let score = score(of: member) else { return nil }
        let position = countBefore { !ScoredMember.isBefore($0, score, member) }
        return reverse ? count - 1 - position : position
    }

    /// Redis' normalization of a rank interval (negative counts from the end): the 0-based
    /// positions it covers, empty when out of range.
    public func ranks(_ start: Int, _ stop: Int) -> Range<Int> {
        let n = count
        var lo = start < 0 ? start + n : start
        var hi = stop < 0 ? stop + n : stop
        if lo < 0 { lo = 0 }
        if lo > hi || lo >= n { return 0..<0 }
        if hi >= n { hi = n - 1 }
        return lo..<hi + 1
    }

    /// ZRANGE by rank: ranks `start`...`stop` (negatives from the end), from the highest when `reverse`.
    public func range(byRank start: Int, _ stop: Int, reverse: Bool = false) -> [ScoredMember] {
        let r = ranks(start, stop)
        guard !r.isEmpty else { return [] }
        if reverse { return elements(from: count - 1 - r.lowerBound, count: r.count, reverse: true) }
        return elements(from: r.lowerBound, count: r.count, reverse: false)
    }

    /// The positions of the members with a score within `min`...`max`.
    func positions(byScore min: ScoreBound, _ max: ScoreBound) -> Range<Int> {
        let lo = countBefore { min.admitsAsMin($0.score) }
        let hi = countBefore { max.exceedsAsMax($0.score) }
        return lo..<Swift.max(lo, hi)
    }

    /// The positions of the members within `min`...`max` by member bytes (meaningful when all
    /// scores are equal, as Redis requires for the BYLEX forms).
    func positions(byLex min: LexBound, _ max: LexBound) -> Range<Int> {
        let lo = countBefore { min.admitsAsMin($0.member) }
        let hi = countBefore { max.exceedsAsMax($0.member) }
        return lo..<Swift.max(lo, hi)
    }

    /// The members at `positions`, from the top when `reverse`, skipping `offset` then taking
    /// at most `limit` (nil or negative: all), the LIMIT clause.
    func window(_ positions: Range<Int>, reverse: Bool, offset: Int, limit: Int?) -> [ScoredMember] {
        let n = positions.count
        guard offset >= 0, offset < n else { return [] }
        var take = n - offset
        if let limit, limit >= 0 { take = Swift.min(take, limit) }
        if reverse { return elements(from: positions.upperBound - 1 - offset, count: take, reverse: true) }
        return elements(from: positions.lowerBound + offset, count: take, reverse: false)
    }

    /// ZRANGE BYSCORE (and ZRANGEBYSCORE/ZREVRANGEBYSCORE): members with a score in
    /// `min`...`max`, from the highest when `reverse`, with LIMIT `offset` `limit`.
    public func range(
        byScore min: ScoreBound, _ max: ScoreBound, reverse: Bool = false, offset: Int = 0, limit: Int? = nil
    ) -> [ScoredMember] {
        window(positions(byScore: min, max), reverse: reverse, offset: offset, limit: limit)
    }

    /// ZRANGE BYLEX (and ZRANGEBYLEX/ZREVRANGEBYLEX).
    public func range(
        byLex min: LexBound, _ max: LexBound, reverse: Bool = false, offset: Int = 0, limit: Int? = nil
    ) -> [ScoredMember] {
        window(positions(byLex: min, max), reverse: reverse, offset: offset, limit: limit)
    }

    /// ZCOUNT, O(log n).
    public func count(byScore min: ScoreBound, _ max: ScoreBound) -> Int { positions(byScore: min, max).count }

    /// ZLEXCOUNT, O(log n).
    public func count(byLex min: LexBound, _ max: LexBound) -> Int { positions(byLex: min, max).count }

    /// Removes the members at 0-based `positions` and returns them in order.
    @discardableResult
    mutating func removePositions(_ positions: Range<Int>) -> [ScoredMember] {
        guard !positions.isEmpty else { return [] }
        if let s = uniqueSkipList() {
            return s.removePositions(positions).map { ScoredMember(member: $0.member, score: $0.score) }
        }
        guard case .listpack(var lp) = storage else { return [] }
        let removed = Array(SortedSetValue.pairs(lp)[positions])
        storage = .listpack(Listpack())
        lp.remove(at: lp.offset(ofIndex: 2 * positions.lowerBound), entries: 2 * positions.count)
        storage = .listpack(lp)
        return removed
    }

    /// ZREMRANGEBYRANK; returns how many were removed.
    @discardableResult
    public mutating func removeRange(byRank start: Int, _ stop: Int) -> Int {
        removePositions(ranks(start, stop)).count
    }

    /// ZREMRANGEBYSCORE; returns how many were removed.
    @discardableResult
    public mutating func removeRange(byScore min: ScoreBound, _ max: ScoreBound) -> Int {
        removePositions(positions(byScore: min, max)).count
    }

    /// ZREMRANGEBYLEX; returns how many were removed.
    @discardableResult
    public mutating func removeRange(byLex min: LexBound, _ max: LexBound) -> Int {
        removePositions(positions(byLex: min, max)).count
    }

    /// ZPOPMIN: removes and returns up to `count` lowest members, lowest first.
    public mutating func popMin(count: Int) -> [ScoredMember] {
        removePositions(0..<Swift.min(Swift.max(count, 0), self.count))
    }

    /// ZPOPMAX: removes and returns up to `count` highest members, highest first.
    public mutating func popMax(count: Int) -> [ScoredMember] {
        let n = self.count
        return removePositions(n - Swift.min(Swift.max(count, 0), n)..<n).reversed()
    }

    /// One ZSCAN step; see `HashValue.scan`. A listpack set returns everything at once.
    public func scan(cursor: UInt64, count: Int) -> (cursor: UInt64, members: [ScoredMember]) {
        guard case .skiplist(let s) = storage else { return (0, entries) }
        var out: [ScoredMember] = []
        let next = s.index.scan(cursor: cursor, count: count) {
            out.append(ScoredMember(member: $0.key, score: $0.value.score))
        }
        return (next, out)
    }

    /// ZRANDMEMBER's picks: up to `count` distinct members for `count >= 0`, `-count` with
    /// repeats for `count < 0`; O(1) each on a skip list (through its index).
    public func randomMembers(count: Int, using rng: inout some RandomNumberGenerator) -> [ScoredMember] {
        let picks = RandomPicks.indices(size: self.count, count: count, using: &rng)
        switch storage {
        case .listpack(let lp):
            let all = SortedSetValue.pairs(lp)
            return picks.map { all[$0] }
        case .skiplist(let s):
            return picks.map { ScoredMember(member: s.index.slots[$0].key, score: s.index.slots[$0].value.score) }
        }
    }
}
