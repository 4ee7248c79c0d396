/// A Redis sorted set: members ordered by (score, member bytes). Small sets are a `Listpack` of
/// member, score pairs kept in order (O(n) operations); a new member beyond
/// `zsetMaxListpackEntries` or longer than `zsetMaxListpackValue` bytes converts it once to a
/// `SkipList` with its member index (O(log n) insert, delete, rank and range start, O(1) score),
/// never back. Read operations are written once over positions: `countBefore` finds where an
/// interval starts or ends, `elements(from:count:reverse:)` reads from there.
public struct SortedSetValue: Sendable {
    /// The two encodings.
    enum Storage: Sendable {
        case listpack(Listpack)
        case skiplist(SkipList)
    }

    var storage: Storage

    /// An empty sorted set (listpack-encoded).
    public init() { storage = .listpack(Listpack()) }

    /// An empty sorted set encoded as Redis' `zsetTypeCreate` would for a command adding
    /// `sizeHint` members, the longest `longestMember` bytes long.
    public init(sizeHint: Int, longestMember: Int, limits: CollectionLimits) {
        if sizeHint <= limits.zsetMaxListpackEntries && longestMember <= limits.zsetMaxListpackValue {
            storage = .listpack(Listpack())
        } else {
            storage = .skiplist(SkipList())
        }
    }

    /// A sorted set with the given storage (deserialization).
    init(storage: Storage) { self.storage = storage }

    /// How many members the set holds.
    public var count: Int {
        switch storage {
        case .listpack(let lp): lp.count / 2
        case .skiplist(let s): s.count
        }
    }

    /// Whether the set has no members.
    public var isEmpty: Bool { count == 0 }

    /// Redis' OBJECT ENCODING name: `listpack` or `skiplist`.
    public var encodingName: String {
        if case .listpack = storage { return "listpack" }
        return "skiplist"
    }

    /// The heap bytes this set holds, kept up to date as it changes.
    public var memoryBytes: Int {
        switch storage {
        case .listpack(let lp): lp.memoryBytes
        case .skiplist(let s): s.memoryBytes
        }
    }

    /// The decoded pairs of a listpack set, in order.
    static func pairs(_ lp: Listpack) -> [ScoredMember] {
        var out: [ScoredMember] = []
        out.reserveCapacity(lp.count / 2)
        var offset = 0
        while offset < lp.bytes.count {
            let m = lp.entry(at: offset)
            let s = lp.entry(at: m.next)
            out.append(ScoredMember(member: Array(lp.bytes[m.payload]), score: decodeScore(lp.bytes, s.payload)))
            offset = s.next
        }
        return out
    }

    /// The score stored in `bytes[range]` (8 little-endian bytes of the bit pattern).
    static func decodeScore(_ bytes: [UInt8], _ range: Range<Int>) -> Double {
        var v: UInt64 = 0
        for (i, b) in bytes[range].enumerated() { v |= UInt64(b) << UInt64(8 * i) }
        return Double(bitPattern: v)
    }

    /// The stored form of a score.
    static func encodeScore(_ score: Double) -> [UInt8] {
        var w = ByteWriter()
        w.double(score)
        return w.bytes
    }

    /// The skip list, copied first if another value shares it, for a mutation.
    mutating func uniqueSkipList() -> SkipList? {
        guard case .skiplist(var s) = storage else { return nil }
        storage = .listpack(Listpack())
        if !isKnownUniquelyReferenced(&s) { s = s.copy() }
        storage = .skiplist(s)
        return s
    }

    /// The score of `member` (ZSCORE), O(1) for a skip list.
    public func score(of member: [UInt8]) -> Double? {
        switch storage {
        case .listpack(let lp):
            guard let offset = lp.firstOffset(of: member, stride: 2) else { return nil }
            return SortedSetValue.decodeScore(lp.bytes, lp.entry(at: lp.entry(at: offset).next).payload)
        case .skiplist(let s):
            return s.score(of: member)
        }
    }

    /// Adds or updates `member` with `score` under ZADD's `options` (Redis' `zsetAdd`); with
    /// `incr` the score is added to the current one. Throws when the result is NaN.
    @discardableResult
    public mutating func add(
        _ member: [UInt8], score: Double, options: ZAddOptions = ZAddOptions(), limits: CollectionLimits
    ) throws(CollectionCommandError) -> ZAddOutcome {
        if let current = self.score(of: member) {
            if options.nx { return .skipped }
            var newScore = score
            if options.incr {
                newScore += current
                if newScore.isNaN { throw CollectionCommandError("resulting score is not a number (NaN)") }
            }
            if (options.lt && newScore >= current) || (options.gt && newScore <= current) { return .skipped }
            // Redis answers the computed score: 0 + -0 is +0 though the stored -0 stays.
            guard newScore != current else { return .unchanged(newScore) }
            if let s = uniqueSkipList() {
                s.updateScore(member, to: newScore)
            } else {
                removeExisting(member)
                insertIntoListpack(member, newScore)
            }
            return .updated(newScore)
        }
        if options.xx { return .skipped }
        insertNew(member, score, limits: limits)
        return .added(score)
    }

    /// Removes `member` (ZREM); returns whether it was present.
    @discardableResult
    public mutating func remove(_ member: [UInt8]) -> Bool {
        guard score(of: member) != nil else { return false }
        removeExisting(member)
        return true
    }

    /// Removes a member known to be present.
    private mutating func removeExisting(_ member: [UInt8]) {
        if let s = uniqueSkipList() {
            s.remove(member)
            return
        }
        guard case .listpack(var lp) = storage, let offset = lp.firstOffset(of: member, stride: 2) else { return }
        storage = .listpack(Listpack())
        lp.remove(at: offset, entries: 2)
        storage = .listpack(lp)
    }

    /// Inserts a member known to be absent, converting to a skip list first when it would pass
    /// the limits (Redis checks before inserting a new member, never on a score update).
    private mutating func insertNew(_ member: [UInt8], _ score: Double, limits: CollectionLimits) {
        if case .listpack(let lp) = storage {
            guard lp.count / 2 + 1 > limits.zsetMaxListpackEntries || member.count > limits.zsetMaxListpackValue else {
                insertIntoListpack(member, score)
                return
            }
            let s = SkipList()
            for p in SortedSetValue.pairs(lp) { s.insert(p.member, p.score) }
            s.insert(member, score)
            storage = .skiplist(s)
            return
        }
        uniqueSkipList()?.insert(member, score)
    }

    /// Inserts an absent member into the listpack at its place in the order. A zero score is
    /// kept as +0: Redis' listpack holds scores as text (`d2string`), which drops -0's sign.
    private mutating func insertIntoListpack(_ member: [UInt8], _ score: Double) {
        guard case .listpack(var lp) = storage else { return }
        let score = score == 0 ? 0 : score
        storage = .listpack(Listpack())
        var offset = 0
        while offset < lp.bytes.count {
            let m = lp.entry(at: offset)
            let s = lp.entry(at: m.next)
            let pair = ScoredMember(member: Array(lp.bytes[m.payload]), score: SortedSetValue.decodeScore(lp.bytes, s.payload))
            if !ScoredMember.isBefore(pair, score, member) { break }
            offset = s.next
        }
        lp.insert(SortedSetValue.encodeScore(score), at: offset)
        lp.insert(member, at: offset)
        storage = .listpack(lp)
    }
}
