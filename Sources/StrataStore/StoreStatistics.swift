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
    let promotions = Atomic<Int>(0)
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

/// A point-in-time reading of everything the store counts.
public struct StoreStatistics: Sendable {
    public var memoryItems: Int
    public var memoryBytes: Int
    public var memoryBudget: Int
    public var memoryHits: Int
    public var memoryMisses: Int
    public var memoryEvictions: Int
    public var memoryExpirations: Int
    public var diskItems: Int
    public var diskBytes: Int
    public var diskBudget: Int
    public var diskFileBytes: Int
    public var diskHits: Int
    public var diskMisses: Int
    public var diskEvictions: Int
    public var diskExpirations: Int
    public var promotions: Int
    public var compressionBytesIn: Int
    public var compressionBytesOut: Int
    public var crcFailures: Int
    public var fsyncs: Int
    public var fsyncSeconds: Double
    public var commits: Int
    public var writeErrors: Int
    public var pendingWrites: Int
    public var warmUp: WarmUpProgress
    /// Whether the disk tier is refusing writes (budget or file system full); see `StoreError.diskFull`.
    public var diskWritesFailing: Bool
}
