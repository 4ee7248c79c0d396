import Logging
import Metrics
import Synchronization

/// The disk tier's single writer: a thread that logs queued writes to the write-ahead log at
/// once and applies them to LMDB in batches, and does the tier's background work.
///
/// Writers anywhere call `enqueue`: the write joins `pending` (the newest operation per key,
/// which readers consult through `lookup`, so a key evicted from memory right after a write still
/// reads back the new value) and `log` (every operation in order). The writer thread
/// (`Writer+Apply.swift`):
///
/// 1. appends `log` to the write-ahead log, within a millisecond or two of the write; under
///    `--fsync always` it syncs the log before the writes' waiters are told (`Writer+Log.swift`);
/// 2. every `applyInterval` (sooner when asked, or when much is pending) applies `pending` to LMDB
///    in one transaction: a hot key written a thousand times costs one put, and random keys share
///    pages. Then it syncs LMDB (unless `never`) and empties the log;
/// 3. syncs the log once a second under `everysec`, sweeps expired entries, evicts when the disk
///    budget nears, and snapshots the hot keys (`Writer+Maintenance.swift`).
///
/// If applying fails (disk budget or file system full, an I/O error), the operations stay
/// pending, the writer retries after `retryPause`, and `failure` is set: the store then refuses
/// new writes with a clear error until an apply succeeds. Nothing acknowledged is dropped.
final class Writer: Sendable {
    enum Operation: Sendable {
        /// Store this record under the key (and drop any tombstone).
        case put([UInt8])
        /// Delete the key; keep this tombstone record if given.
        case delete(tombstone: [UInt8]?)
    }

    struct Queued: Sendable {
        var operation: Operation
        var sequence: UInt64
        /// The user key's XXH64 (its stripe, shard and snapshot bucket).
        var keyHash: UInt64
    }

    enum LogEntry: Sendable {
        case write([UInt8], Operation)
        case clear(Clear)
    }

    /// A flush: every record whose version is at most `floor` goes. `full`: no record in the
    /// store is newer (the common case), so the databases are emptied outright instead of
    /// walked.
    struct Clear: Sendable, Equatable {
        var floor: Version
        var full: Bool

        /// The form a log frame carries it in (its key field, which the frame's CRC covers).
        var bytes: [UInt8] { floor.bytes + [full ? 1 : 0] }
        init(floor: Version, full: Bool) {
            self.floor = floor
            self.full = full
        }
        /// From a log frame's key; an empty key is a flush written before floors existed.
        init?(bytes: [UInt8]) {
            if bytes.isEmpty {
                self.init(floor: .zero, full: true)
                return
            }
            guard bytes.count == 13, let floor = Version(bytes: bytes.prefix(12)) else { return nil }
            self.init(floor: floor, full: bytes[12] != 0)
        }
    }

    enum Lookup {
        case none
        case put([UInt8])
        /// Deleted (with its tombstone record, if one was kept), or cleared by a flush.
        case deleted([UInt8]?)
    }

    /// Clean-up that is not a client's write: applied only if its condition still holds.
    enum Maintenance: Sendable {
        /// Delete the record if it is expired at `now`.
        case deleteIfExpired([UInt8], now: Int64)
        /// Delete the record if its CRC still does not match.
        case deleteIfCorrupt([UInt8])
    }

    typealias Completion = @Sendable (StoreError?) -> Void

    struct State: Sendable {
        var pending = PendingTable()
        var applying = PendingTable()
        var pendingBytes = 0
        /// Bytes of the batch being applied now.
        var applyingBytes = 0
        var log: [LogEntry] = []
        var maintenance: [Maintenance] = []
        /// A flush is queued or being applied: disk reads must see an empty tier.
        var queuedClear: Clear?
        var clearApplying = false
        var clearQueued: Bool { queuedClear != nil }
        /// The newest flush: records at most this version are gone (and are refused if they come
        /// back from a peer). Persisted in `meta` with the flush itself.
        var floor = Version.zero
        var nextSequence: UInt64 = 1
        /// Every write up to here is in the write-ahead log.
        var loggedSequence: UInt64 = 0
        /// ... synced (under `always`; other modes promise less).
        var durableSequence: UInt64 = 0
        /// ... applied to LMDB.
        var appliedSequence: UInt64 = 0
        var applyWaiters: [(UInt64, Completion)] = []
        var durableWaiters: [(UInt64, Completion)] = []
        var applyRequested = false
        /// The writer is in its long sleep (nothing was queued): an enqueue must wake it.
        var writerIdle = false
        var failure: StoreError?
        var stopping = false
        var snapshotRequested = false
        var syncRequested: [Completion] = []
    }

    /// Apply to LMDB sooner than `applyInterval` when this many keys are pending, to bound the batch.
    static let applyAtKeys = 200_000
    /// ...or this many bytes: 4 MiB, or a tenth of the disk budget or a 32nd of the memory budget
    /// if smaller (at least 1 MiB), because one apply must fit in LMDB's spare map, and the queued
    /// records are heap the memory budget pays for.
    let applyAtBytes: Int
    /// An apply commits every this many keys (one sync at its end): LMDB keeps a transaction's
    /// dirty pages in malloc'd memory, up to a page per key written, and caches them for reuse
    /// for good, so the largest transaction sets that cache's size (`docs/DESIGN.md`, memory).
    static let commitEveryKeys = 2_048

    /// Guards everything queued, the sequence numbers and the waiters (`State`).
    let state = Locked(State())
    /// Bytes queued and being applied, readable without the lock (for backpressure).
    let backlog = Atomic<Int>(0)

    /// Queued and applying bytes past which writers should wait: a sixteenth of the memory budget
    /// (at most 8 MiB, at least two batches), so a burst is absorbed at memory speed while a
    /// sustained load runs at the speed LMDB takes it, and the process cannot grow without limit.
    /// The heap behind it is about 1.6 times these bytes for small values (key and record arrays),
    /// on top of a full memory tier while a burst lasts, and partly left as free heap after it
    /// (`docs/DESIGN.md`, memory): hence a bound this small.
    /// Under sustained overload writers wait for the next apply, so this also bounds write latency.
    let backlogLimit: Int
    /// Whether writers should wait for the disk tier to catch up.
    var isBacklogged: Bool { backlog.load(ordering: .relaxed) >= backlogLimit }
    /// Raised when the writer thread should look at `state` before its poll timeout.
    let wakeup = Wakeup()
    private let thread = Locked<StoreThread?>(nil)
    let disk: DiskTier
    let memory: MemoryTier
    let log: WriteAheadLog
    /// The hot-set snapshot and its journal.
    let snapshots: Snapshots
    /// While the warm start runs: the user-key hashes of every write since the store opened
    /// (and of the log's replayed writes), which the warm start must not overwrite from the
    /// snapshot. Recorded at enqueue, under the key's stripe lock, so the check the loader makes
    /// under that lock is exact.
    let changedDuringWarmUp = Locked(Set<UInt64>())
    let recordingChanges = Atomic<Bool>(false)
    /// How many writes `changedDuringWarmUp` has had: while none, the loader skips its lock.
    let changesRecorded = Atomic<Int>(0)

    /// Whether the key with this hash was written since the store opened (while the warm start
    /// runs). The caller holds the key's stripe lock, as every writer of the key does.
    func changedSinceOpen(_ keyHash: UInt64) -> Bool {
        changesRecorded.load(ordering: .relaxed) > 0 && changedDuringWarmUp.withLock { $0.contains(keyHash) }
    }
    /// A replayed write's key could not be told (a long key deleted without a tombstone): the
    /// warm start reads every key from LMDB rather than trust the snapshot.
    let snapshotUntrusted = Atomic<Bool>(false)
    let counters: StoreCounters
    let fsync: FsyncMode
    let snapshotInterval: Duration?
    let logger: Logger
    let fsyncTimer: Metrics.Timer
    /// Whether the disk tier's pages are all in the page cache (checked every `residencyInterval`):
    /// then a read that misses memory cannot block on the disk and may run on the event loop.
    let diskResident = Atomic<Bool>(false)

    init(
        disk: DiskTier, memory: MemoryTier, log: WriteAheadLog, snapshots: Snapshots, counters: StoreCounters,
        configuration: StoreConfiguration, logger: Logger, metrics: any MetricsFactory
    ) {
        self.disk = disk
        self.memory = memory
        self.log = log
        self.snapshots = snapshots
        recordingChanges.store(configuration.warmStart, ordering: .relaxed)
        self.counters = counters
        self.fsync = configuration.fsync
        self.snapshotInterval = configuration.snapshotInterval > 0 ? .seconds(configuration.snapshotInterval) : nil
        self.logger = logger
        self.applyAtBytes = min(4 << 20, max(1 << 20, configuration.diskBudget / 10), max(1 << 20, configuration.memoryBudget / 32))
        self.backlogLimit = max(2 * applyAtBytes, min(configuration.memoryBudget / 16, 8 << 20))
        self.fsyncTimer = Metrics.Timer(label: "strata_fsync_duration", preferredDisplayUnit: .seconds, factory: metrics)
    }

    /// Starts the writer thread (after `recover`).
    func start() {
        let started = StoreThread(name: "strata-writer") { [self] in run() }
        thread.withLock { $0 = started }
    }

    /// Applies everything queued, writes a final snapshot, syncs, and stops the thread.
    func stop() {
        state.withLock { s in
            s.stopping = true
            s.snapshotRequested = true
            s.applyRequested = true
        }
        wakeup.signal()
        thread.withLock { $0 }?.join()
    }

    // MARK: Queue (any thread)

    /// Queues `operation` for `storageKey` (of the user key whose XXH64 is `keyHash`); returns
    /// its sequence number.
    @discardableResult
    func enqueue(_ storageKey: [UInt8], _ operation: Operation, keyHash: UInt64) -> UInt64 {
        let size: Int
        switch operation {
        case .put(let record): size = storageKey.count + record.count
        case .delete(let tombstone): size = storageKey.count + (tombstone?.count ?? 0)
        }
        let pendingKey = PendingKey(storageKey)
        if recordingChanges.load(ordering: .relaxed) {
            changedDuringWarmUp.withLock { _ = $0.insert(keyHash) }
            changesRecorded.wrappingAdd(1, ordering: .relaxed)
        }
        let (sequence, wake) = state.withLock { s in
            let sequence = s.nextSequence
            s.nextSequence += 1
            s.pending.set(Queued(operation: operation, sequence: sequence, keyHash: keyHash), for: pendingKey)
            s.pendingBytes += size
            backlog.store(s.pendingBytes + s.applyingBytes, ordering: .relaxed)
            s.log.append(.write(storageKey, operation))
            // Wake the writer only from its idle sleep, or when a client waits for the sync: a
            // busy writer polls every `busyPoll`, and a wake-up per write costs more than the write.
            let wake = s.writerIdle || fsync == .always
            s.writerIdle = false
            return (sequence, wake)
        }
        if wake { wakeup.signal() }
        return sequence
    }

    func enqueue(maintenance: Maintenance) {
        state.withLock { $0.maintenance.append(maintenance) }
    }

    /// The newest queued operation on `storageKey` not yet applied to LMDB.
    func lookup(_ storageKey: [UInt8]) -> Lookup {
        let pendingKey = PendingKey(storageKey)
        return state.withLock { s in
            // A queued flush supersedes the batch being applied now (taken before it).
            let queued = s.pending[pendingKey] ?? (s.clearQueued ? nil : s.applying[pendingKey])
            switch queued?.operation {
            case .put(let record): return .put(record)
            case .delete(let tombstone): return .deleted(tombstone)
            case nil: return s.clearQueued || s.clearApplying ? .deleted(nil) : .none
            }
        }
    }

    var failure: StoreError? { state.withLock { $0.failure } }
    var pendingCount: Int { state.withLock { $0.pending.count + $0.applying.count } }
    var appliedSequence: UInt64 { state.withLock { $0.appliedSequence } }

    /// Calls `completion` once every write queued so far is applied to LMDB.
    func whenApplied(_ completion: @escaping Completion) {
        let ready: Bool = state.withLock { s in
            let target = s.nextSequence - 1
            if s.appliedSequence >= target && !s.clearQueued && !s.clearApplying { return true }
            s.applyWaiters.append((target, completion))
            s.applyRequested = true
            return false
        }
        if ready { completion(nil) } else { wakeup.signal() }
    }

    /// Calls `completion` once write `sequence` is in the synced write-ahead log.
    func whenDurable(_ sequence: UInt64, _ completion: @escaping Completion) {
        let ready = state.withLock { s in
            if s.durableSequence >= sequence { return true }
            s.durableWaiters.append((sequence, completion))
            return false
        }
        if ready { completion(nil) }
    }

    /// Applies everything queued to LMDB and syncs it, whatever the fsync mode, then calls
    /// `completion`.
    func sync(_ completion: @escaping Completion) {
        state.withLock { s in
            s.syncRequested.append(completion)
            s.applyRequested = true
        }
        wakeup.signal()
    }

    /// The newest flush's floor.
    var floor: Version { state.withLock { $0.floor } }

    /// Sets the floor read from the disk tier at open (before `start`).
    func restoreFloor(_ floor: Version) {
        state.withLock { $0.floor = max($0.floor, floor) }
    }

    /// Drops every queued write whose version is at most `floor` and clears those records from
    /// the disk tier (logged, so a crash cannot undo it). `latest`: the newest version the store's
    /// clock has made or seen, read by the caller after observing `floor`. Returns false if a flush
    /// at `floor` or later was requested before (nothing to do).
    func requestClear(floor: Version, latest: () -> UInt64) -> Bool {
        let requested = state.withLock { s -> Bool in
            guard floor > s.floor else { return false }
            s.floor = floor
            // Read under the lock: a write whose version is newer than `floor` either read the
            // clock before this (so `latest` is past `floor`: walk, keeping it) or enqueues after.
            let full = latest() <= floor.clock && (s.queuedClear?.full ?? true)
            if full {
                s.pending.removeAll()
                s.pendingBytes = 0
            } else {
                var kept = PendingTable()
                var keptBytes = 0
                for (key, queued) in s.pending where Writer.version(of: queued.operation).map({ $0 > floor }) ?? false {
                    kept.set(queued, for: key)
                    keptBytes += key.bytes.count + Writer.size(of: queued.operation)
                }
                s.pending = kept
                s.pendingBytes = keptBytes
            }
            backlog.store(s.pendingBytes + s.applyingBytes, ordering: .relaxed)
            s.maintenance.removeAll()
            let clear = Clear(floor: floor, full: full)
            s.queuedClear = clear
            s.applyRequested = true
            s.log.append(.clear(clear))
            s.nextSequence += 1
            return true
        }
        if requested { wakeup.signal() }
        return requested
    }

    /// The version of a queued record (nil for a delete without a tombstone).
    static func version(of operation: Operation) -> Version? {
        switch operation {
        case .put(let record): return TieredStore.version(ofRecord: record)
        case .delete(let tombstone): return tombstone.flatMap { TieredStore.version(ofRecord: $0) }
        }
    }

    static func size(of operation: Operation) -> Int {
        switch operation {
        case .put(let record): return record.count
        case .delete(let tombstone): return tombstone?.count ?? 0
        }
    }

    func requestSnapshot() {
        state.withLock { $0.snapshotRequested = true }
        wakeup.signal()
    }
}
