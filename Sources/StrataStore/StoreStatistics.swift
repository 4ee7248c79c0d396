import Synchronization

/// Counters the store keeps outside the memory tier's shard locks. Relaxed atomics: each is an
/// independent count read only for reporting.
final class StoreCounters: Sendable {
    let diskHits = Atomic<Int>(0)
    let diskMisses = Atomic<Int>(0)
    let diskEvictions = Atomic<Int>(0)
    let diskExpirations = Atomic<Int>(0)
    let compressionBytesIn = Atomic<Int>(0)
    let compressionBytesOut = Atomic<Int>(0)
    let crcFailures = Atomic<Int>(0)
    let fsyncs = Atomic<Int>(0)
    let fsyncNanoseconds = Atomic<Int>(0)
    let commits = Atomic<Int>(0)
    let writeErrors = Atomic<Int>(0)
    /// Disk I/O that failed outside a commit (reads, log syncs, sweeps, snapshots), each also logged.
    let ioErrors = Atomic<Int>(0)
    let promotions = Atomic<Int>(0)
    /// Flushes applied (each newer than the one before).
    let flushes = Atomic<Int>(0)
    let diskItems = Atomic<Int>(0)
    let diskBytes = Atomic<Int>(0)
    let warmLoadedKeys = Atomic<Int>(0)
    let warmLoadedBytes = Atomic<Int>(0)
    let warmTotalKeys = Atomic<Int>(0)
    let warmDone = Atomic<Bool>(false)
    let warmNanoseconds = Atomic<Int>(0)

    @inline(__always)
    func add(_ counter: borrowing Atomic<Int>, _ n: Int = 1) {
        counter.wrappingAdd(n, ordering: .relaxed)
    }
}

/// Where a key lives right now, for `STRATA.TIER` and tests.
public struct TierInfo: Sendable, Equatable {
    public enum Tier: String, Sendable {
        /// In the memory tier (and, written through, on disk).
        case memory
        /// On disk only.
        case disk
        /// Not stored (or expired).
        case none
    }

    public var tier: Tier
    /// Bytes of the value as the client sees it.
    public var valueLength: Int
    /// Bytes of the record on disk (header, key if long, value as stored); 0 if not yet on disk.
    public var storedLength: Int
    /// Whether the disk copy is zlib-compressed.
    public var compressed: Bool
    /// The version of the stored record (replicas of a key that agree have the same one).
    public var version: Version? = nil
    /// What the key holds.
    public var kind: ValueKind = .string

    public static let none = TierInfo(tier: .none, valueLength: 0, storedLength: 0, compressed: false)
}

/// The warm start's progress: loading the last snapshot's hot keys into memory.
public struct WarmUpProgress: Sendable, Equatable {
    /// Keys loaded into memory so far.
    public var loadedKeys: Int
    /// Value and key bytes loaded so far.
    public var loadedBytes: Int
    /// Keys in the snapshot.
    public var totalKeys: Int
    /// Whether loading has finished (or there was nothing to load).
    public var done: Bool
    /// Seconds spent loading (so far, or in all once done).
    public var seconds: Double
}

/// A point-in-time reading of everything the store counts: each count is kept in one place in
/// the store and only read here.
public struct StoreStatistics: Sendable {
    /// Keys in the memory tier.
    public var memoryItems: Int
    /// Bytes the memory tier is charged for (keys, values, per-entry overhead, index).
    public var memoryBytes: Int
    /// The memory tier's budget in bytes.
    public var memoryBudget: Int
    /// Reads the memory tier answered.
    public var memoryHits: Int
    /// Reads the memory tier could not answer (they go on to disk).
    public var memoryMisses: Int
    /// Entries the memory tier evicted to stay within its budget.
    public var memoryEvictions: Int
    /// Expired entries removed from the memory tier.
    public var memoryExpirations: Int
    /// Keys in the disk tier, as of its last commit.
    public var diskItems: Int
    /// Bytes of LMDB pages the disk tier uses, as of its last commit.
    public var diskBytes: Int
    /// The disk tier's budget in bytes.
    public var diskBudget: Int
    /// Size of the LMDB data file in use (its high-water mark).
    public var diskFileBytes: Int
    /// Reads that missed memory and were answered from disk.
    public var diskHits: Int
    /// Reads that missed both tiers.
    public var diskMisses: Int
    /// Entries the disk tier evicted to stay within its budget.
    public var diskEvictions: Int
    /// Expired entries removed from the disk tier.
    public var diskExpirations: Int
    /// Disk hits copied back into memory.
    public var promotions: Int
    /// Value bytes stored compressed, before compression.
    public var compressionBytesIn: Int
    /// Bytes those values took after compression.
    public var compressionBytesOut: Int
    /// Disk records whose checksum did not match.
    public var crcFailures: Int
    /// Syncs of the disk tier or its log to stable storage.
    public var fsyncs: Int
    /// Seconds spent in those syncs.
    public var fsyncSeconds: Double
    /// Group commits of queued writes to LMDB.
    public var commits: Int
    /// Commits and log appends that failed (and were retried).
    public var writeErrors: Int
    /// Other disk I/O that failed and was logged: reads, log syncs, sweeps, snapshots.
    public var diskIOErrors: Int
    /// Writes queued for the disk tier's next commit.
    public var pendingWrites: Int
    /// The warm start's progress.
    public var warmUp: WarmUpProgress
    /// Flushes this store applied (FLUSHALL and FLUSHDB here, or a peer's).
    public var flushes: Int
    /// The newest flush's floor (`Version.zero`: never flushed).
    public var flushFloor: Version
    /// Whether the disk tier is refusing writes (budget or file system full); see `StoreError.diskFull`.
    public var diskWritesFailing: Bool
}

/// A key found by a scan of the disk tier, with its absolute expiry (0: none) and kind.
public struct ScannedKey: Sendable, Equatable {
    public var key: [UInt8]
    public var expiresAt: Int64
    public var kind: ValueKind
}
