/// A Redis set of binary-safe members in one of three encodings, as Redis 7.2: an intset
/// (sorted `Int64`s, O(log n) lookup, O(n) insert, while every member is a canonical integer
/// and there are at most `setMaxIntsetEntries`), a `Listpack` (O(n), while at most
/// `setMaxListpackEntries` members of at most `setMaxListpackValue` bytes), else a `ByteTable`
/// (O(1)). Conversions go one way: intset -> listpack or hashtable, listpack -> hashtable.
public struct SetValue: Sendable {
    /// The three encodings.
    enum Storage: Sendable {
        case intset([Int64])
        case listpack(Listpack)
        case table(ByteTable<Void>)
    }

    private(set) var storage: Storage
    /// The bytes of every member as stored separately (table form only).
    private var memberBytes = 0

    /// An empty set (intset-encoded, as an empty set that receives an integer first).
    public init() { storage = .intset([]) }

    /// An empty set encoded as Redis' `setTypeCreate` would for a command adding `sizeHint`
    /// members, the first `firstMember`: intset when that is an integer and the hint fits the
    /// intset limit, else listpack when the hint fits its limit, else hashtable.
    public init(sizeHint: Int, firstMember: [UInt8], limits: CollectionLimits) {
        if RedisInteger.parse(firstMember) != nil && sizeHint <= limits.setMaxIntsetEntries {
            storage = .intset([])
        } else if sizeHint <= limits.setMaxListpackEntries {
            storage = .listpack(Listpack())
        } else {
            storage = .table(ByteTable(capacity: sizeHint))
        }
    }

    /// A set with the given storage (deserialization).
    init(storage: Storage, memberBytes: Int) {
        self.storage = storage
        self.memberBytes = memberBytes
    }

    /// How many members the set holds.
    public var count: Int {
        switch storage {
        case .intset(let a): a.count
        case .listpack(let lp): lp.count
        case .table(let t): t.count
        }
    }

    /// Whether the set has no members.
    public var isEmpty: Bool { count == 0 }

    /// Redis' OBJECT ENCODING name: `intset`, `listpack` or `hashtable`.
    public var encodingName: String {
        switch storage {
        case .intset: "intset"
        case .listpack: "listpack"
        case .table: "hashtable"
        }
    }

    /// The heap bytes this set holds, kept up to date as it changes.
    public var memoryBytes: Int {
        switch storage {
        case .intset(let a): ByteCost.array(capacity: a.capacity, stride: 8)
        case .listpack(let lp): lp.memoryBytes
        case .table(let t): t.memoryBytes + memberBytes
        }
    }

    /// Whether `member` is in the set (SISMEMBER).
    public func contains(_ member: [UInt8]) -> Bool {
        switch storage {
        case .intset(let a):
            guard let v = RedisInteger.parse(member) else { return false }
            return SetValue.position(of: v, in: a).found
        case .listpack(let lp):
            return lp.firstOffset(of: member) != nil
        case .table(let t):
            return t.index(of: member) != nil
        }
    }

    /// Where `v` is or would go in the sorted `a`.
    static func position(of v: Int64, in a: [Int64]) -> (index: Int, found: Bool) {
        var lo = 0
        var hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < v { lo = mid + 1 } else { hi = mid }
        }
        return (lo, lo < a.count && a[lo] == v)
    }

    /// Adds `member` (SADD); returns whether it was new. Converts as Redis' `setTypeAdd` does.
    @discardableResult
    public mutating func add(_ member: [UInt8], limits: CollectionLimits) -> Bool {
        switch storage {
        case .intset(var a):
            if let v = RedisInteger.parse(member) {
                let p = SetValue.position(of: v, in: a)
                if p.found { return false }
                storage = .intset([])
                a.insert(v, at: p.index)
                storage = .intset(a)
                if a.count > limits.setMaxIntsetEntries { convertToTable() }
                return true
            }
            let longest = a.isEmpty ? 0 : max(String(a[0]).utf8.count, String(a[a.count - 1]).utf8.count)
            if a.count < limits.setMaxListpackEntries && member.count <= limits.setMaxListpackValue
                && longest <= limits.setMaxListpackValue {
                convertToListpack()
            } else {
                convertToTable()
            }
            return add(member, limits: limits)
        case .listpack(var lp):
            if lp.firstOffset(of: member) != nil { return false }
            if lp.count < limits.setMaxListpackEntries && member.count <= limits.setMaxListpackValue {
                storage = .intset([])
                lp.append(member)
                storage = .listpack(lp)
                return true
            }
            convertToTable()
            return add(member, limits: limits)
        case .table(var t):
            if t.index(of: member) != nil { return false }
            storage = .intset([])
            t.insertNew(member, ())
            storage = .table(t)
            memberBytes += ByteCost.string(member.count)
            return true
        }
    }

    /// Removes `member` (SREM); returns whether it was present.
    @discardableResult
    public mutating func remove(_ member: [UInt8]) -> Bool {
        switch storage {
        case .intset(var a):
            guard let v = RedisInteger.parse(member) else { return false }
            let p = SetValue.position(of: v, in: a)
            guard p.found else { return false }
            storage = .intset([])
            a.remove(at: p.index)
            storage = .intset(a)
            return true
        case .listpack(var lp):
            guard let offset = lp.firstOffset(of: member) else { return false }
            storage = .intset([])
            lp.remove(at: offset)
            storage = .listpack(lp)
            return true
        case .table(var t):
            guard let i = t.index(of: member) else { return false }
            storage = .intset([])
            t.removeSlot(i)
            storage = .table(t)
            memberBytes -= ByteCost.string(member.count)
            return true
        }
    }

    /// Every member: ascending for an intset, insertion order for a listpack, table order otherwise (SMEMBERS).
    public var members: [[UInt8]] {
        switch storage {
        case .intset(let a): a.map(RedisInteger.format)
        case .listpack(let lp): lp.elements
        case .table(let t): t.slots.map(\.key)
        }
    }

    /// One SSCAN step; see `HashValue.scan`. Intset and listpack sets return everything at once.
    public func scan(cursor: UInt64, count: Int) -> (cursor: UInt64, members: [[UInt8]]) {
        guard case .table(let t) = storage else { return (0, members) }
        var out: [[UInt8]] = []
        let next = t.scan(cursor: cursor, count: count) { out.append($0.key) }
        return (next, out)
    }

    /// SRANDMEMBER's picks: up to `count` distinct members for `count >= 0`, `-count` with
    /// repeats for `count < 0`.
    public func randomMembers(count: Int, using rng: inout some RandomNumberGenerator) -> [[UInt8]] {
        let picks = RandomPicks.indices(size: self.count, count: count, using: &rng)
        switch storage {
        case .intset(let a): return picks.map { RedisInteger.format(a[$0]) }
        case .listpack(let lp):
            let all = lp.elements
            return picks.map { all[$0] }
        case .table(let t): return picks.map { t.slots[$0].key }
        }
    }

    /// SPOP: removes and returns up to `count` distinct random members.
    public mutating func popRandom(count: Int, using rng: inout some RandomNumberGenerator) -> [[UInt8]] {
        let popped = randomMembers(count: max(count, 0), using: &rng)
        for m in popped { remove(m) }
        return popped
    }

    /// Switches an intset to a listpack (members in ascending order, as Redis converts).
    private mutating func convertToListpack() {
        guard case .intset(let a) = storage else { return }
        var lp = Listpack()
        for v in a { lp.append(RedisInteger.format(v)) }
        storage = .listpack(lp)
    }

    /// Switches an intset or listpack to the table form.
    private mutating func convertToTable() {
        let all = members
        var t = ByteTable<Void>(capacity: all.count + 1)
        memberBytes = 0
        for m in all {
            t.insertNew(m, ())
            memberBytes += ByteCost.string(m.count)
        }
        storage = .table(t)
    }
}
