import CLMDB
import Dispatch
import Foundation
import Logging
import Metrics
import Synchronization

/// The disk tier's single writer: a thread that group-commits queued writes and does the tier's
/// background work.
///
/// Writers anywhere call `enqueue`; the latest operation per key waits in `pending`. The writer
/// thread swaps the whole queue out (so a hot key written a thousand times between two commits
/// costs one LMDB put), applies it in one transaction, commits, and, under `FsyncMode.always`,
/// syncs before it tells the waiters. Until a write is committed, readers find it through
/// `lookup` (in `pending`, or in `committing` while its commit runs), so a key evicted from memory
/// right after a write still reads back the new value.
///
/// If a commit fails (disk budget or file system full, an I/O error), its operations go back into
/// the queue, the writer retries with a pause, and `failure` is set: the store then refuses new
/// writes with a clear error until a commit succeeds again. Nothing acknowledged is dropped.
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
    }

    enum Lookup {
        case none
        case put([UInt8])
        case deleted
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
        var pending: [[UInt8]: Queued] = [:]
        var committing: [[UInt8]: Queued] = [:]
        var maintenance: [Maintenance] = []
        /// A flush is queued or being applied: disk reads must see an empty tier.
        var clearQueued = false
        var clearCommitting = false
        var nextSequence: UInt64 = 1
        var committedSequence: UInt64 = 0
        var durableSequence: UInt64 = 0
        var commitWaiters: [(UInt64, Completion)] = []
        var durableWaiters: [(UInt64, Completion)] = []
        var failure: StoreError?
        var stopping = false
        var snapshotRequested = false
        var syncRequested: [Completion] = []
    }

    let state = Locked(State())
    private let wakeup = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let disk: DiskTier
    private let memory: MemoryTier
    private let counters: StoreCounters
    private let fsync: FsyncMode
    private let snapshotInterval: Double
    private let logger: Logger
    private let fsyncTimer: Metrics.Timer

    init(
        disk: DiskTier, memory: MemoryTier, counters: StoreCounters, configuration: StoreConfiguration,
        logger: Logger, metrics: any MetricsFactory
    ) {
        self.disk = disk
        self.memory = memory
        self.counters = counters
        self.fsync = configuration.fsync
        self.snapshotInterval = configuration.snapshotInterval
        self.logger = logger
        self.fsyncTimer = Metrics.Timer(label: "strata_fsync_duration", preferredDisplayUnit: .seconds, factory: metrics)
    }

    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "strata-writer"
        thread.start()
    }

    // MARK: Queue (any thread)

    /// Queues `operation` for `storageKey`; returns its sequence number.
    func enqueue(_ storageKey: [UInt8], _ operation: Operation) -> UInt64 {
        let (sequence, wasIdle) = state.withLock { s in
            let sequence = s.nextSequence
            s.nextSequence += 1
            let wasIdle = s.pending.isEmpty
            s.pending[storageKey] = Queued(operation: operation, sequence: sequence)
            return (sequence, wasIdle)
        }
        if wasIdle { wakeup.signal() }
        return sequence
    }

    func enqueue(maintenance: Maintenance) {
        state.withLock { $0.maintenance.append(maintenance) }
        wakeup.signal()
    }

    /// The newest queued, not yet committed operation on `storageKey`.
    func lookup(_ storageKey: [UInt8]) -> Lookup {
        state.withLock { s in
            let queued = s.pending[storageKey] ?? s.committing[storageKey]
            switch queued?.operation {
            case .put(let record): return .put(record)
            case .delete: return .deleted
            case nil: return s.clearQueued || s.clearCommitting ? .deleted : .none
            }
        }
    }

    var failure: StoreError? { state.withLock { $0.failure } }
    var pendingCount: Int { state.withLock { $0.pending.count + $0.committing.count } }

    /// Calls `completion` once every write queued so far is committed (`durable: false`) or
    /// committed and synced (`durable: true`).
    func whenDone(durable: Bool, _ completion: @escaping Completion) {
        let ready: Bool = state.withLock { s in
            let target = s.nextSequence - 1
            if durable {
                if s.durableSequence >= target { return true }
                s.durableWaiters.append((target, completion))
            } else {
                if s.committedSequence >= target && !s.clearQueued && !s.clearCommitting { return true }
                s.commitWaiters.append((target, completion))
            }
            return false
        }
        if ready { completion(nil) } else { wakeup.signal() }
    }

    /// Calls `completion` once write `sequence` is synced to disk.
    func whenDurable(_ sequence: UInt64, _ completion: @escaping Completion) {
        let ready = state.withLock { s in
            if s.durableSequence >= sequence { return true }
            s.durableWaiters.append((sequence, completion))
            return false
        }
        if ready { completion(nil) }
    }

    /// Commits what is queued and syncs it, whatever the fsync mode, then calls `completion`.
    func sync(_ completion: @escaping Completion) {
        state.withLock { $0.syncRequested.append(completion) }
        wakeup.signal()
    }

    /// Drops every queued write and clears the disk tier at the next commit.
    func requestClear() {
        state.withLock { s in
            s.pending.removeAll()
            s.maintenance.removeAll()
            s.clearQueued = true
            s.nextSequence += 1
        }
        wakeup.signal()
    }

    func requestSnapshot() {
        state.withLock { $0.snapshotRequested = true }
        wakeup.signal()
    }

    /// Commits everything queued, writes a final snapshot, syncs, and stops the thread.
    func stop() {
        state.withLock { s in
            s.stopping = true
            s.snapshotRequested = true
        }
        wakeup.signal()
        finished.wait()
    }

    // MARK: The writer thread

    private struct Batch {
        var operations: [[UInt8]: Queued]
        var maintenance: [Maintenance]
        var clear: Bool
        var lastSequence: UInt64
    }

    private func run() {
        var lastSync = monotonicNanoseconds()
        var lastSweep = lastSync
        var lastSnapshot = lastSync
        var unsynced = false
        var eviction = DiskTier.EvictionState()
        var sweepHands: ([UInt8], [UInt8]) = ([], [])
        var retryAfter: UInt64 = 0
        var stopDeadline: UInt64? = nil

        while true {
            _ = wakeup.wait(timeout: .now() + .milliseconds(50))
            let now = monotonicNanoseconds()

            // 1. Commit the queue.
            if now >= retryAfter, let batch = takeBatch() {
                do {
                    try commit(batch, eviction: &eviction)
                    unsynced = true
                    if fsync == .always {
                        try syncNow()
                        unsynced = false
                        lastSync = monotonicNanoseconds()
                    }
                    finishBatch(batch, error: nil)
                } catch {
                    let storeError = describe(error)
                    counters.add(counters.writeErrors)
                    logger.error("disk tier commit failed; will retry", metadata: ["error": "\(storeError.message)"])
                    restore(batch, error: storeError)
                    retryAfter = monotonicNanoseconds() + 500_000_000
                }
            }

            // 2. Explicit sync requests, and the once-a-second sync of `everysec`.
            let syncWaiters = state.withLock { s -> [Completion] in
                let w = s.syncRequested
                s.syncRequested = []
                return w
            }
            let pendingEmpty = state.withLock { $0.pending.isEmpty && $0.maintenance.isEmpty && !$0.clearQueued }
            if !syncWaiters.isEmpty && !pendingEmpty && now >= retryAfter {
                // Let the next loop commit what is queued first.
                state.withLock { $0.syncRequested.append(contentsOf: syncWaiters) }
                wakeup.signal()
            } else if !syncWaiters.isEmpty || (fsync == .everysec && unsynced && now - lastSync >= 1_000_000_000) {
                var syncError: StoreError? = nil
                do {
                    try syncNow()
                    unsynced = false
                } catch {
                    syncError = describe(error)
                    logger.error("fsync failed", metadata: ["error": "\(error)"])
                }
                lastSync = monotonicNanoseconds()
                if syncError == nil { markDurable() }
                for w in syncWaiters { w(syncError ?? state.withLock { $0.failure }) }
            }

            // 3. Background work: sweep expired entries, snapshot the hot keys.
            if now - lastSweep >= 100_000_000 {
                lastSweep = now
                let nowMs = currentTimeMilliseconds()
                _ = memory.sweepExpired(now: nowMs, perShard: 256)
                do {
                    let txn = try disk.env.beginWrite()
                    let removed = try disk.sweepExpired(
                        now: nowMs, limit: 1000, dataHand: &sweepHands.0, tombstoneHand: &sweepHands.1, in: txn)
                    try txn.commit()
                    counters.add(counters.diskExpirations, removed)
                } catch {
                    logger.warning("expiry sweep failed", metadata: ["error": "\(error)"])
                }
                refreshDiskGauges()
            }
            let (snapshotWanted, stopping) = state.withLock { ($0.snapshotRequested, $0.stopping) }
            let snapshotDue = snapshotInterval > 0 && Double(now - lastSnapshot) / 1e9 >= snapshotInterval
            if snapshotWanted || snapshotDue {
                lastSnapshot = now
                state.withLock { $0.snapshotRequested = false }
                writeSnapshot()
                unsynced = true
            }

            if stopping {
                if stopDeadline == nil { stopDeadline = now + 5_000_000_000 }
                let drained = state.withLock { $0.pending.isEmpty && $0.maintenance.isEmpty && !$0.clearQueued }
                if drained || now >= stopDeadline! {
                    try? syncNow()
                    markDurable()
                    failAllWaiters(drained ? nil : StoreError(.closed, "store closed before the write was committed"))
                    finished.signal()
                    return
                }
            }
        }
    }

    private func takeBatch() -> Batch? {
        state.withLock { s in
            guard !s.pending.isEmpty || !s.maintenance.isEmpty || s.clearQueued else { return nil }
            swap(&s.pending, &s.committing)
            let batch = Batch(
                operations: s.committing, maintenance: s.maintenance, clear: s.clearQueued,
                lastSequence: s.nextSequence - 1)
            s.maintenance = []
            s.clearCommitting = s.clearQueued
            s.clearQueued = false
            return batch
        }
    }

    private func commit(_ batch: Batch, eviction: inout DiskTier.EvictionState) throws {
        do {
            try apply(batch, eviction: &eviction)
        } catch let error as LMDBError where error.isMapFull {
            // The map filled before the budget check could evict: evict harder, then retry once.
            logger.warning("disk tier map full; evicting before retrying the commit")
            let txn = try disk.env.beginWrite()
            eviction.cutoff = nil
            let evicted = try disk.evict(
                to: Int(Double(disk.budget) * 0.5), state: &eviction, maxVisits: Int.max, in: txn,
                isHot: isInMemory)
            try txn.commit()
            dropFromMemory(evicted)
            try apply(batch, eviction: &eviction)
        }
    }

    private func apply(_ batch: Batch, eviction: inout DiskTier.EvictionState) throws {
        let txn = try disk.env.beginWrite()
        if batch.clear {
            try txn.clear(disk.data)
            try txn.clear(disk.tombstones)
            try txn.clear(disk.snapshot)
        }
        let hasTombstones = txn.stat(disk.tombstones).ms_entries > 0
        for (key, queued) in batch.operations {
            try key.withUnsafeBytes { k in
                switch queued.operation {
                case .put(let record):
                    try record.withUnsafeBytes { try txn.put(disk.data, k, $0) }
                    if hasTombstones { try txn.delete(disk.tombstones, k) }
                case .delete(let tombstone):
                    try txn.delete(disk.data, k)
                    if let tombstone {
                        try tombstone.withUnsafeBytes { try txn.put(disk.tombstones, k, $0) }
                    }
                }
            }
        }
        for item in batch.maintenance {
            switch item {
            case .deleteIfExpired(let key, let now):
                try key.withUnsafeBytes { k in
                    if let record = try txn.get(disk.data, k),
                        let header = try? Record.header(record, verify: false),
                        header.expiry != 0, header.expiry <= now
                    {
                        try txn.delete(disk.data, k)
                        counters.add(counters.diskExpirations)
                    }
                }
            case .deleteIfCorrupt(let key):
                try key.withUnsafeBytes { k in
                    if let record = try txn.get(disk.data, k), (try? Record.header(record)) == nil {
                        try txn.delete(disk.data, k)
                    }
                }
            }
        }
        var evicted: [[UInt8]] = []
        // Start evicting above `evictAbove`; once an episode runs, continue it down to `evictTo`.
        let used = disk.usedBytes(txn)
        if used > Int(Double(disk.budget) * DiskTier.evictAbove)
            || (eviction.cutoff != nil && used > Int(Double(disk.budget) * DiskTier.evictTo))
        {
            evicted = try disk.evict(
                to: Int(Double(disk.budget) * DiskTier.evictTo), state: &eviction,
                maxVisits: used > disk.budget ? Int.max : 20_000, in: txn, isHot: isInMemory)
        }
        let usedAfter = disk.usedBytes(txn)
        let items = Int(txn.stat(disk.data).ms_entries)
        try txn.commit()
        counters.add(counters.commits)
        counters.diskBytes.store(usedAfter, ordering: .relaxed)
        counters.diskItems.store(items, ordering: .relaxed)
        dropFromMemory(evicted)
    }

    private func isInMemory(_ key: [UInt8]) -> Bool {
        key.withUnsafeBytes { memory.contains($0, hash: StableHash.hash($0)) }
    }

    /// Keys evicted from disk leave memory too, so the two tiers never disagree after a restart.
    private func dropFromMemory(_ keys: [[UInt8]]) {
        counters.add(counters.diskEvictions, keys.count)
        for key in keys {
            key.withUnsafeBytes { _ = memory.remove($0, hash: StableHash.hash($0)) }
        }
    }

    private func finishBatch(_ batch: Batch, error: StoreError?) {
        let ready: [Completion] = state.withLock { s in
            s.committing = [:]
            s.clearCommitting = false
            s.failure = nil
            s.committedSequence = max(s.committedSequence, batch.lastSequence)
            if fsync == .always { s.durableSequence = max(s.durableSequence, batch.lastSequence) }
            var ready: [Completion] = []
            s.commitWaiters.removeAll { waiter in
                guard waiter.0 <= s.committedSequence else { return false }
                ready.append(waiter.1)
                return true
            }
            s.durableWaiters.removeAll { waiter in
                guard waiter.0 <= s.durableSequence else { return false }
                ready.append(waiter.1)
                return true
            }
            return ready
        }
        for completion in ready { completion(nil) }
    }

    /// Puts a failed batch back under the newer writes queued meanwhile, and fails its waiters.
    private func restore(_ batch: Batch, error: StoreError) {
        let failed: [Completion] = state.withLock { s in
            for (key, queued) in s.committing where s.pending[key] == nil {
                s.pending[key] = queued
            }
            s.committing = [:]
            s.maintenance = batch.maintenance + s.maintenance
            if batch.clear { s.clearQueued = true }
            s.clearCommitting = false
            s.failure = error
            var failed: [Completion] = []
            s.durableWaiters.removeAll { waiter in
                guard waiter.0 <= batch.lastSequence else { return false }
                failed.append(waiter.1)
                return true
            }
            return failed
        }
        for completion in failed { completion(error) }
    }

    private func markDurable() {
        let ready: [Completion] = state.withLock { s in
            s.durableSequence = max(s.durableSequence, s.committedSequence)
            var ready: [Completion] = []
            s.durableWaiters.removeAll { waiter in
                guard waiter.0 <= s.durableSequence else { return false }
                ready.append(waiter.1)
                return true
            }
            return ready
        }
        for completion in ready { completion(nil) }
    }

    private func failAllWaiters(_ error: StoreError?) {
        let all: [Completion] = state.withLock { s in
            let all = s.commitWaiters.map(\.1) + s.durableWaiters.map(\.1) + s.syncRequested
            s.commitWaiters = []
            s.durableWaiters = []
            s.syncRequested = []
            return all
        }
        for completion in all { completion(error) }
    }

    private func syncNow() throws {
        let start = monotonicNanoseconds()
        try disk.env.sync()
        let elapsed = monotonicNanoseconds() - start
        counters.add(counters.fsyncs)
        counters.add(counters.fsyncNanoseconds, Int(elapsed))
        fsyncTimer.recordNanoseconds(Int64(elapsed))
    }

    private func writeSnapshot() {
        let keys = memory.hottestKeys(maxBytes: max(memory.budget, 1 << 20))
        do {
            let txn = try disk.env.beginWrite()
            try disk.writeSnapshot(keys, in: txn)
            try txn.commit()
            logger.debug("wrote hot-key snapshot", metadata: ["keys": "\(keys.count)"])
        } catch {
            logger.warning("hot-key snapshot failed", metadata: ["error": "\(error)"])
        }
    }

    private func refreshDiskGauges() {
        guard let txn = try? disk.env.beginRead() else { return }
        counters.diskBytes.store(disk.usedBytes(txn), ordering: .relaxed)
        counters.diskItems.store(Int(txn.stat(disk.data).ms_entries), ordering: .relaxed)
    }

    private func describe(_ error: any Error) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? LMDBError, e.isMapFull || e.isNoSpace {
            return StoreError(.diskFull, "disk tier full: \(e)")
        }
        return StoreError(.storage, "disk tier write failed: \(error)")
    }
}
