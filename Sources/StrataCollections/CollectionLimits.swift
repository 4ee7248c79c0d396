/// The thresholds that decide when a small collection leaves its compact encoding, with Redis'
/// names and defaults. The server holds one live copy (CONFIG SET changes it) and passes it to
/// every mutation; a value converts when a mutation crosses a threshold, never back (as Redis).
public struct CollectionLimits: Sendable, Equatable {
    /// `hash-max-listpack-entries` (alias `hash-max-ziplist-entries`): most fields in a listpack
    /// hash. 512 is the default compiled into Redis 7 (what CONFIG GET answers without a
    /// config file); the sample redis.conf sets 128.
    public var hashMaxListpackEntries = 512
    /// `hash-max-listpack-value` (alias `hash-max-ziplist-value`): longest field or value in a listpack hash.
    public var hashMaxListpackValue = 64
    /// `set-max-intset-entries`: most members in an intset.
    public var setMaxIntsetEntries = 512
    /// `set-max-listpack-entries`: most members in a listpack set.
    public var setMaxListpackEntries = 128
    /// `set-max-listpack-value`: longest member in a listpack set.
    public var setMaxListpackValue = 64
    /// `zset-max-listpack-entries` (alias `zset-max-ziplist-entries`): most members in a listpack sorted set.
    public var zsetMaxListpackEntries = 128
    /// `zset-max-listpack-value` (alias `zset-max-ziplist-value`): longest member in a listpack sorted set.
    public var zsetMaxListpackValue = 64
    /// `list-max-listpack-size` (alias `list-max-ziplist-size`): a list node's limit; positive is
    /// a count of entries (and at most 8 KiB), -1...-5 is 4, 8, 16, 32 or 64 KiB of entry bytes.
    public var listMaxListpackSize = -2
    /// `list-compress-depth`: how many nodes at each end of a list stay uncompressed (0: none is compressed).
    public var listCompressDepth = 0

    /// Redis' defaults.
    public init() {}

    /// The parameter names (lowercase) and their `*-ziplist-*` aliases, as CONFIG GET/SET know them.
    public static let parameterNames: [String] = [
        "hash-max-listpack-entries", "hash-max-listpack-value",
        "hash-max-ziplist-entries", "hash-max-ziplist-value",
        "set-max-intset-entries", "set-max-listpack-entries", "set-max-listpack-value",
        "zset-max-listpack-entries", "zset-max-listpack-value",
        "zset-max-ziplist-entries", "zset-max-ziplist-value",
        "list-max-listpack-size", "list-max-ziplist-size", "list-compress-depth",
    ]

    /// The value of parameter `name` (any case, aliases included), nil for an unknown name.
    public func value(of name: String) -> Int? {
        guard let key = CollectionLimits.keyPath(for: name) else { return nil }
        return self[keyPath: key]
    }

    /// Sets parameter `name` (any case, aliases included) to `value`; throws the argument part
    /// of Redis' CONFIG SET error ("argument must be between 0 and ... inclusive") when `value`
    /// is outside what Redis accepts, or "Unknown option" for a name that is not a threshold.
    public mutating func set(_ name: String, to value: Int) throws(CollectionCommandError) {
        guard let key = CollectionLimits.keyPath(for: name) else { throw CollectionCommandError("Unknown option or number of arguments for CONFIG SET - '\(name)'") }
        let range = CollectionLimits.range(for: key)
        guard range.contains(value) else {
            throw CollectionCommandError("argument must be between \(range.lowerBound) and \(range.upperBound) inclusive")
        }
        self[keyPath: key] = value
    }

    /// The writable property behind parameter `name`.
    private static func keyPath(for name: String) -> WritableKeyPath<CollectionLimits, Int>? {
        switch name.lowercased() {
        case "hash-max-listpack-entries", "hash-max-ziplist-entries": \.hashMaxListpackEntries
        case "hash-max-listpack-value", "hash-max-ziplist-value": \.hashMaxListpackValue
        case "set-max-intset-entries": \.setMaxIntsetEntries
        case "set-max-listpack-entries": \.setMaxListpackEntries
        case "set-max-listpack-value": \.setMaxListpackValue
        case "zset-max-listpack-entries", "zset-max-ziplist-entries": \.zsetMaxListpackEntries
        case "zset-max-listpack-value", "zset-max-ziplist-value": \.zsetMaxListpackValue
        case "list-max-listpack-size", "list-max-ziplist-size": \.listMaxListpackSize
        case "list-compress-depth": \.listCompressDepth
        default: nil
        }
    }

    /// The values Redis 7 accepts for a parameter (its `createSizeTConfig`/`createIntConfig` bounds).
    private static func range(for key: WritableKeyPath<CollectionLimits, Int>) -> ClosedRange<Int> {
        switch key {
        case \.listMaxListpackSize: Int(Int32.min)...Int(Int32.max)
        case \.listCompressDepth: 0...Int(Int32.max)
        default: 0...Int(Int64.max)
        }
    }

    /// A list node's limits for `listMaxListpackSize`: the most entry bytes and the most entries.
    var listNodeLimits: (bytes: Int, entries: Int) {
        let fill = listMaxListpackSize
        if fill >= 0 { return (8192, max(fill, 1)) }
        let sizes = [4096, 8192, 16384, 32768, 65536]
        return (sizes[min(-fill, 5) - 1], Int.max)
    }
}
