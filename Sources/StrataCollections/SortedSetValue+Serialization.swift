extension SortedSetValue {
    /// The sorted set as bytes: the header, then for a listpack the entry count and raw entry
    /// bytes (member, 8-byte score, in order), for a skip list the member count and each
    /// member then its score's 8 bytes, in order.
    public func serialize() -> [UInt8] {
        switch storage {
        case .listpack(let lp):
            var w = SerializationTag.writer(.sortedSet, .listpack)
            w.count(lp.count)
            w.string(lp.bytes)
            return w.bytes
        case .skiplist(let s):
            var w = SerializationTag.writer(.sortedSet, .skiplist)
            w.count(s.count)
            var node = s.first
            while let n = node {
                w.string(n.member)
                w.double(n.score)
                node = n.levels[0].forward
            }
            return w.bytes
        }
    }

    /// The sorted set `serialize()` wrote, in the same encoding; throws on anything else (wrong
    /// type, truncation, trailing bytes, a NaN score, members out of order or repeated).
    public init(deserializing bytes: [UInt8]) throws(CollectionFormatError) {
        var r = ByteReader(bytes)
        switch try SerializationTag.read(&r, expecting: .sortedSet) {
        case .listpack:
            let n = try r.count(atMost: r.remaining)
            let lp = try Listpack.validated(bytes: try r.string(), count: n)
            guard n % 2 == 0 else { throw CollectionFormatError("listpack sorted set has an odd number of entries") }
            var offset = 0
            var previous: ScoredMember? = nil
            while offset < lp.bytes.count {
                let m = lp.entry(at: offset)
                let s = lp.entry(at: m.next)
                guard s.payload.count == 8 else { throw CollectionFormatError("score entry is not 8 bytes") }
                let pair = ScoredMember(member: Array(lp.bytes[m.payload]), score: SortedSetValue.decodeScore(lp.bytes, s.payload))
                try SortedSetValue.check(pair, after: previous)
                previous = pair
                offset = s.next
            }
            try r.expectEnd()
            self.init(storage: .listpack(lp))
        case .skiplist:
            let n = try r.count(atMost: r.remaining / 9)
            let list = SkipList()
            var previous: ScoredMember? = nil
            for _ in 0..<n {
                let pair = ScoredMember(member: try r.string(), score: try r.double())
                try SortedSetValue.check(pair, after: previous)
                list.insert(pair.member, pair.score)
                previous = pair
            }
            try r.expectEnd()
            self.init(storage: .skiplist(list))
        case let other:
            throw CollectionFormatError("encoding \(other) is not a sorted set encoding")
        }
    }

    /// Throws unless `pair` has a number for a score and sorts strictly after `previous`
    /// (which also rules out a repeated member, the order being by score then member).
    private static func check(_ pair: ScoredMember, after previous: ScoredMember?) throws(CollectionFormatError) {
        guard !pair.score.isNaN else { throw CollectionFormatError("NaN score") }
        if let previous, !ScoredMember.isBefore(previous, pair.score, pair.member) {
            throw CollectionFormatError("sorted set members out of order")
        }
    }
}
