/// When the disk tier's writes reach stable storage.
public enum FsyncMode: String, Sendable, CaseIterable {
    /// A write is acknowledged after the commit that holds it is synced: kill -9 or power loss
    /// loses nothing acknowledged.
    case always
    /// Commits are synced once a second: a power loss loses at most about a second; kill -9 loses
    /// nothing that was committed (commits happen continuously, within milliseconds of a write).
    case everysec
    /// The operating system decides when to write back.
    case never
}

/// How a `TieredStore` is sized and behaves.
public struct StoreConfiguration: Sendable {
    /// Bytes the memory tier may hold: keys, values and per-entry overhead (see `MemoryTier`).
    public var memoryBudget: Int
    /// Bytes the disk tier may hold in LMDB pages; it evicts its oldest entries as it nears this.
    public var diskBudget: Int
    /// Values of at least this many bytes are stored zlib-compressed when that makes them smaller.
    public var compressThreshold: Int
    /// When writes are synced; see `FsyncMode`.
    public var fsync: FsyncMode
    /// Seconds between snapshots of the memory tier's hot keys (0 = only at close).
    public var snapshotInterval: Double
    /// Node id stamped into versions of writes made here.
    public var nodeID: UInt32
    /// How long a delete's tombstone is kept (milliseconds), so a late replica write cannot revive it.
    public var tombstoneTTL: Int64
    /// Number of memory-tier shards (rounded to a power of two); nil picks from the budget.
    public var memoryShards: Int?
    /// Whether `open` starts loading the hot-key snapshot into memory in the background.
    public var warmStart: Bool

    public init(
        memoryBudget: Int = 256 << 20,
        diskBudget: Int = 4 << 30,
        compressThreshold: Int = 1024,
        fsync: FsyncMode = .everysec,
        snapshotInterval: Double = 60,
        nodeID: UInt32 = 0,
        tombstoneTTL: Int64 = 24 * 3600 * 1000,
        memoryShards: Int? = nil,
        warmStart: Bool = true
    ) {
        self.memoryBudget = memoryBudget
        self.diskBudget = diskBudget
        self.compressThreshold = compressThreshold
        self.fsync = fsync
        self.snapshotInterval = snapshotInterval
        self.nodeID = nodeID
        self.tombstoneTTL = tombstoneTTL
        self.memoryShards = memoryShards
        self.warmStart = warmStart
    }

    func validate() throws {
        guard memoryBudget >= 0 else {
            throw StoreError(.badConfiguration, "memory budget must not be negative")
        }
        guard diskBudget >= 1 << 20 else {
            throw StoreError(.badConfiguration, "disk budget must be at least 1MiB (got \(diskBudget) bytes)")
        }
        guard compressThreshold >= 0 else {
            throw StoreError(.badConfiguration, "compress threshold must not be negative")
        }
        guard snapshotInterval >= 0 else {
            throw StoreError(.badConfiguration, "snapshot interval must not be negative")
        }
    }
}

/// Parses a byte size such as `512MiB`, `4GiB`, `64kb`, `1g` or a plain number of bytes.
///
/// Binary (KiB, MiB, GiB, TiB) and short (k, m, g, t, kb, mb, gb, tb) suffixes all mean powers of
/// 1024, as they do in Redis' configuration; returns nil for anything else.
public func parseByteSize(_ text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: " \t")
    let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty, let number = Int(digits) else { return nil }
    let unit = trimmed.dropFirst(digits.count).lowercased()
    let shift: Int
    switch unit {
    case "", "b": shift = 0
    case "k", "kb", "kib": shift = 10
    case "m", "mb", "mib": shift = 20
    case "g", "gb", "gib": shift = 30
    case "t", "tb", "tib": shift = 40
    default: return nil
    }
    let (result, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
    return overflow ? nil : result
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return s
    }
}
