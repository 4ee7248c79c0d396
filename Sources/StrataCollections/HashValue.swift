/// A Redis hash: binary-safe field -> value. Small hashes are a `Listpack` of field, value
/// pairs (O(n) operations, n bounded by the limits); past `hashMaxListpackEntries` fields or a
/// field or value longer than `hashMaxListpackValue` bytes it converts once to a `ByteTable`
/// (O(1) operations) and never converts back, as Redis.
public struct HashValue: Sendable {
    /// The two encodings.
    enum Storage: Sendable {
        case listpack(Listpack)
        case table(ByteTable<[UInt8]>)
    }

    private(set) var storage: Storage = .listpack(Listpack())
    /// The bytes of every field and value as stored separately (table form only).
    private var entryBytes = 0

    /// An empty hash (listpack-encoded).
    public init() {}

    /// A hash with the given storage (deserialization).
    init(storage: Storage, entryBytes: Int) {
        self.storage = storage
        self.entryBytes = entryBytes
    }

    /// How many fields the hash holds.
    public var count: Int {
        switch storage {
        case .listpack(let lp): lp.count / 2
        case .table(let t): t.count
        }
    }

    /// Whether the hash has no fields (the store deletes such a key).
    public var isEmpty: Bool { count == 0 }

    /// Redis' OBJECT ENCODING name: `listpack` or `hashtable`.
    public var encodingName: String {
        if case .listpack = storage { return "listpack" }
        return "hashtable"
    }

    /// The heap bytes this hash holds, kept up to date as it changes (never walks it).
    public var memoryBytes: Int {
        switch storage {
        case .listpack(let lp): lp.memoryBytes
        case .table(let t): t.memoryBytes + entryBytes
        }
    }

    /// The value of `field`, if present.
    public func get(_ field: [UInt8]) -> [UInt8]? {
        switch storage {
        case .listpack(let lp):
            guard let offset = lp.firstOffset(of: field, stride: 2) else { return nil }
            return lp.element(at: lp.entry(at: offset).next)
        case .table(let t):
            return t[field]
        }
    }

    /// Whether `field` is present (HEXISTS).
    public func contains(_ field: [UInt8]) -> Bool { get(field) != nil }

    /// The length of `field`'s value, 0 when absent (HSTRLEN).
    public func valueLength(_ field: [UInt8]) -> Int { get(field)?.count ?? 0 }

    /// Sets `field` to `value` (HSET); returns true when the field is new.
    @discardableResult
    public mutating func set(_ field: [UInt8], _ value: [UInt8], limits: CollectionLimits) -> Bool {
        if case .listpack = storage,
            field.count > limits.hashMaxListpackValue || value.count > limits.hashMaxListpackValue {
            convertToTable()
        }
        switch storage {
        case .listpack(var lp):
            storage = .listpack(Listpack())  // lp is now the only reference: edits stay in place
            if let offset = lp.firstOffset(of: field, stride: 2) {
                lp.replace(at: lp.entry(at: offset).next, with: value)
                storage = .listpack(lp)
                return false
            }
            lp.append(field)
            lp.append(value)
            storage = .listpack(lp)
            if lp.count / 2 > limits.hashMaxListpackEntries { convertToTable() }
            return true
        case .table(var t):
            storage = .listpack(Listpack())
            defer { storage = .table(t) }
            if let i = t.index(of: field) {
                entryBytes += ByteCost.string(value.count) - ByteCost.string(t.slots[i].value.count)
                t.setValue(value, atSlot: i)
                return false
            }
            t.insertNew(field, value)
            entryBytes += ByteCost.string(field.count) + ByteCost.string(value.count)
            return true
        }
    }

    /// Removes `field` (HDEL); returns whether it was present.
    @discardableResult
    public mutating func remove(_ field: [UInt8]) -> Bool {
        switch storage {
        case .listpack(var lp):
            guard let offset = lp.firstOffset(of: field, stride: 2) else { return false }
            storage = .listpack(Listpack())
            lp.remove(at: offset, entries: 2)
            storage = .listpack(lp)
            return true
        case .table(var t):
            guard let i = t.index(of: field) else { return false }
            storage = .listpack(Listpack())
            let value = t.removeSlot(i)
            entryBytes -= ByteCost.string(field.count) + ByteCost.string(value.count)
            storage = .table(t)
            return true
        }
    }

    /// Sets `field` to what `transform` makes of its current value (nil when absent), the
    /// read-modify-write under HINCRBY and HINCRBYFLOAT; returns the new value. Nothing changes
    /// when `transform` throws.
    @discardableResult
    public mutating func update(
        _ field: [UInt8], limits: CollectionLimits, _ transform: ([UInt8]?) throws -> [UInt8]
    ) rethrows -> [UInt8] {
        let value = try transform(get(field))
        set(field, value, limits: limits)
        return value
    }

    /// Adds `increment` to `field`'s integer value (absent counts as 0), HINCRBY; throws Redis'
    /// errors for a non-integer value or an overflow.
    @discardableResult
    public mutating func incrementInteger(
        _ field: [UInt8], by increment: Int64, limits: CollectionLimits
    ) throws(CollectionCommandError) -> Int64 {
        var current: Int64 = 0
        if let old = get(field) {
            guard let v = RedisInteger.parse(old) else { throw CollectionCommandError("hash value is not an integer") }
            current = v
        }
        let (sum, overflow) = current.addingReportingOverflow(increment)
        guard !overflow else { throw CollectionCommandError("increment or decrement would overflow") }
        set(field, RedisInteger.format(sum), limits: limits)
        return sum
    }

    /// Every field and value, in the hash's iteration order (HGETALL, HKEYS, HVALS).
    public var entries: [(field: [UInt8], value: [UInt8])] {
        switch storage {
        case .listpack(let lp):
            let all = lp.elements
            return stride(from: 0, to: all.count, by: 2).map { (all[$0], all[$0 + 1]) }
        case .table(let t):
            return t.slots.map { ($0.key, $0.value) }
        }
    }

    /// One HSCAN step from `cursor` (0 starts): the fields and values it returns, and the next
    /// cursor (0 when done). A listpack hash returns everything at once, as Redis; a table
    /// returns about `count` entries a call, and every field present for the whole scan is
    /// returned at least once even when fields are added or removed between calls.
    public func scan(cursor: UInt64, count: Int) -> (cursor: UInt64, entries: [(field: [UInt8], value: [UInt8])]) {
        switch storage {
        case .listpack:
            return (0, entries)
        case .table(let t):
            var out: [(field: [UInt8], value: [UInt8])] = []
            let next = t.scan(cursor: cursor, count: count) { out.append(($0.key, $0.value)) }
            return (next, out)
        }
    }

    /// The entry at position `index` of the iteration order (for random picks).
    private func entry(at index: Int, in all: [(field: [UInt8], value: [UInt8])]?) -> (field: [UInt8], value: [UInt8]) {
        if let all { return all[index] }
        guard case .table(let t) = storage else { preconditionFailure("listpack entries come from `all`") }
        return (t.slots[index].key, t.slots[index].value)
    }

    /// HRANDFIELD's picks: for `count >= 0` up to `count` distinct fields (all of them when
    /// `count` is at least the size), for `count < 0` exactly `-count` fields, repeats allowed.
    public func randomEntries(
        count: Int, using rng: inout some RandomNumberGenerator
    ) -> [(field: [UInt8], value: [UInt8])] {
        let size = self.count
        guard size > 0, count != 0 else { return [] }
        var all: [(field: [UInt8], value: [UInt8])]? = nil
        if case .listpack = storage { all = entries }
        let picks = RandomPicks.indices(size: size, count: count, using: &rng)
        return picks.map { entry(at: $0, in: all) }
    }

    /// Switches a listpack hash to the table form.
    private mutating func convertToTable() {
        guard case .listpack(let lp) = storage else { return }
        let all = lp.elements
        var t = ByteTable<[UInt8]>(capacity: all.count / 2)
        entryBytes = 0
        for i in stride(from: 0, to: all.count, by: 2) {
            t.insertNew(all[i], all[i + 1])
            entryBytes += ByteCost.string(all[i].count) + ByteCost.string(all[i + 1].count)
        }
        storage = .table(t)
    }
}
