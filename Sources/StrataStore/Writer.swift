import CLMDB
import Dispatch
import Foundation
import Logging
import Metrics
import Synchronization

/// The disk tier's single writer: a thread that logs queued writes to the write-ahead log at
/// once and applies them to LMDB in batches, and does the tier's background work.
///
/// Writers anywhere call `enqueue`: the write joins `pending` (the newest operation per key,
/// which readers consult through `lookup`, so a key evicted from memory right after a write still
/// reads back the new value) and `log` (every operation in order). The writer thread:
///
/// 1. appends `log` to the write-ahead log, within a millisecond or two of the write; under
///    `--fsync always` it syncs the log before the writes' waiters are told;
/// 2. about once a second (sooner when asked, or when much is pending) applies `pending` to LMDB
///    in one transaction: a hot key written a thousand times costs one put, and random keys share
///    pages. Then it syncs LMDB (unless `never`) and empties the log;
/// 3. syncs the log once a second under `everysec`, sweeps expired entries, evicts when the disk
///    budget nears, and snapshots the hot keys.
///
/// If applying fails (disk budget or file system full, an I/O error), the operations stay
/// pending, the writer retries with a pause, and `failure` is set: the store then refuses new
/// writes with a clear error until an apply succeeds. Nothing acknowledged is dropped.
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

    enum LogEntry: Sendable {
        case write([UInt8], Operation)
        case clear
    }

    /// A storage key with its stable hash computed once: Swift's `Hasher` over the key's bytes
    /// cost more than the rest of an enqueue, under the lock both event loops contend for.
    struct PendingKey: Hashable, Sendable {
        let bytes: [UInt8]
        let hash: UInt64

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            self.hash = bytes.withUnsafeBytes { StableHash.hash($0) }
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        /// The dictionary's hash straight from the key's XXH64, mixed with the dictionary's seed:
        /// SipHash over it again (Hasher) was 5% of a pipelined SET load.
        func _rawHashValue(seed: Int) -> Int {
            var z = hash ^ UInt64(UInt(bitPattern: seed))
            z = (z ^ (z >> 31)) &* 0x9E37_79B9_7F4A_7C15
            return Int(truncatingIfNeeded: z ^ (z >> 29))
        }
        static func == (a: PendingKey, b: PendingKey) -> Bool { a.hash == b.hash && a.bytes == b.bytes }
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
        var pending: [PendingKey: Queued] = [:]
        var applying: [PendingKey: Queued] = [:]
        var pendingBytes = 0
        /// Bytes of the batch being applied now.
        var applyingBytes = 0
        var log: [LogEntry] = []
        var maintenance: [Maintenance] = []
        /// A flush is queued or being applied: disk reads must see an empty tier.
        var clearQueued = false
        var clearApplying = false
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

    /// Apply to LMDB at least this often while writes are pending...
    static let applyInterval: UInt64 = 1_000_000_000
    /// ...and sooner when this many keys or bytes are pending.
    static let applyAtKeys = 200_000
    /// 16 MiB, or a tenth of the disk budget if smaller: one apply must fit in LMDB's spare map,
    /// and LMDB holds a transaction's dirty pages in (anonymous) memory until it commits. Measured
    /// filling 300,000 x 1 KiB with `--memory 32MiB`: 64 MiB batches peaked at ~400 MiB resident
    /// and took 68k writes/s; 16 MiB batches peaked at ~165 MiB and took 89k writes/s.
    let applyAtBytes: Int

    let state = Locked(State())
    /// Bytes queued and being applied, readable without the lock (for backpressure).
    private let backlog = Atomic<Int>(0)

    /// Queued and applying bytes past which writers should wait: a quarter of the memory budget
    /// (at most 64 MiB, at least two batches), so a burst is absorbed at memory speed while a
    /// sustained load runs at the speed LMDB takes it. Without a bound a write burst faster than
    /// LMDB would grow the queue, and the process, without limit. Under a sustained overload the
    /// next apply takes the whole queue, and writers wait while it runs: the bound is also the
    /// worst write latency. At 256 MiB, sustained 4 KiB SETs saw a p99 of 0.6-0.9 s and a max of
    /// 2 s, and 2.3 GB resident with `--memory 2GiB`; at 64 MiB, 0.33-0.40 s, 0.4-0.85 s and
    /// 1.75 GB, at the same throughput (32 MiB lowered the tail further but cost about 15%).
    let backlogLimit: Int
    /// Whether writers should wait for the disk tier to catch up.
    var isBacklogged: Bool { backlog.load(ordering: .relaxed) >= backlogLimit }
    private let wakeup = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let disk: DiskTier
    private let memory: MemoryTier
    private let log: WriteAheadLog
    private let counters: StoreCounters
    private let fsync: FsyncMode
    private let snapshotInterval: Double
    private let logger: Logger
    private let fsyncTimer: Metrics.Timer

    init(
        disk: DiskTier, memory: MemoryTier, log: WriteAheadLog, counters: StoreCounters,
        configuration: StoreConfiguration, logger: Logger, metrics: any MetricsFactory
    ) {
        self.disk = disk
        self.memory = memory
        self.log = log
        self.counters = counters
        self.fsync = configuration.fsync
        self.snapshotInterval = configuration.snapshotInterval
        self.logger = logger
        self.applyAtBytes = min(16 << 20, max(1 << 20, configuration.diskBudget / 10))
        self.backlogLimit = max(2 * applyAtBytes, min(configuration.memoryBudget / 4, 64 << 20))
        self.fsyncTimer = Metrics.Timer(label: "strata_fsync_duration", preferredDisplayUnit: .seconds, factory: metrics)
    }

    /// Re-applies what the write-ahead log holds (writes acknowledged before a crash), syncs, and
    /// empties the log. Called once, before `start`.
    func recover() throws {
        var frames: [(WriteAheadLog.Kind, [UInt8], [UInt8])] = []
        _ = try log.replay { kind, key, record in frames.append((kind, key, record)) }
        var index = 0
        while index < frames.count {
            let txn = try disk.env.beginWrite()
            let end = min(frames.count, index + 50_000)
            for (kind, key, record) in frames[index..<end] {
                try key.withUnsafeBytes { k in
                    switch kind {
                    case .put:
                        try record.withUnsafeBytes { try txn.put(disk.data, k, $0) }
                        try txn.delete(disk.tombstones, k)
                    case .delete:
                        try txn.delete(disk.data, k)
                        if !record.isEmpty { try record.withUnsafeBytes { try txn.put(disk.tombstones, k, $0) } }
                    case .clear:
                        try txn.clear(disk.data)
                        try txn.clear(disk.tombstones)
                        try txn.clear(disk.snapshot)
                    }
                }
            }
            try txn.commit()
            index = end
        }
        if !frames.isEmpty {
            try disk.env.sync()
            logger.info("replayed the write-ahead log", metadata: ["writes": "\(frames.count)"])
        }
        try log.reset()
        if let read = try? disk.env.beginRead() {
            counters.diskBytes.store(disk.usedBytes(read), ordering: .relaxed)
            counters.diskItems.store(Int(read.stat(disk.data).ms_entries), ordering: .relaxed)
        }
    }

    func start() {
        let thread = Thread { [self] in
            Self.nameThread("strata-writer")
            self.run()
        }
        thread.name = "strata-writer"
        thread.start()
    }

    /// Names the calling thread, for `top -H` and `perf` (Foundation's `Thread.name` does not
    /// reach the kernel on Linux). A lower CPU priority for the writer was tried and measured:
    /// nice 10 changed nothing on the p99 of a 90/10 load (a niced thread still runs whole
    /// scheduler ticks once it is picked); SCHED_IDLE lowered it on a node pinned to one core but
    /// starved the writer until SETs waited up to 0.9 s, and an unprivileged process cannot leave
    /// SCHED_IDLE again.
    static func nameThread(_ name: String) {
        #if os(Linux)
        _ = linuxSetThreadName(pthread_self(), String(name.prefix(15)))
        #endif
    }

    // MARK: Queue (any thread)

    /// Queues `operation` for `storageKey`; returns its sequence number.
    @discardableResult
    func enqueue(_ storageKey: [UInt8], _ operation: Operation) -> UInt64 {
        let size: Int
        switch operation {
        case .put(let record): size = storageKey.count + record.count
        case .delete(let tombstone): size = storageKey.count + (tombstone?.count ?? 0)
        }
        let pendingKey = PendingKey(storageKey)
        let (sequence, wake) = state.withLock { s in
            let sequence = s.nextSequence
            s.nextSequence += 1
            s.pending[pendingKey] = Queued(operation: operation, sequence: sequence)
            s.pendingBytes += size
            backlog.store(s.pendingBytes + s.applyingBytes, ordering: .relaxed)
            s.log.append(.write(storageKey, operation))
            // Wake the writer only from its long idle sleep, or when a client waits for the sync:
            // while busy it polls every millisecond, and a futex wake per write cost more CPU
            // than the write itself (profiled at ~20% of a pipelined SET load).
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
            let queued = s.pending[pendingKey] ?? s.applying[pendingKey]
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

    /// Drops every queued write and clears the disk tier (logged, so a crash cannot undo it).
    func requestClear() {
        state.withLock { s in
            s.pending.removeAll()
            s.pendingBytes = 0
            backlog.store(s.applyingBytes, ordering: .relaxed)
            s.maintenance.removeAll()
            s.clearQueued = true
            s.applyRequested = true
            s.log.append(.clear)
            s.nextSequence += 1
        }
        wakeup.signal()
    }

    func requestSnapshot() {
        state.withLock { $0.snapshotRequested = true }
        wakeup.signal()
    }

    /// Applies everything queued, writes a final snapshot, syncs, and stops the thread.
    func stop() {
        state.withLock { s in
            s.stopping = true
            s.snapshotRequested = true
            s.applyRequested = true
        }
        wakeup.signal()
        finished.wait()
    }

    // MARK: The writer thread

    private struct Batch {
        var operations: [PendingKey: Queued]
        var maintenance: [Maintenance]
        var clear: Bool
        var lastSequence: UInt64
        /// Bytes of the queued records (`pendingBytes` when the batch was taken).
        var bytes: Int
    }

    private struct Clocks {
        var lastApply = monotonicNanoseconds()
        var lastLogSync = monotonicNanoseconds()
        var lastSweep = monotonicNanoseconds()
        var lastSnapshot = monotonicNanoseconds()
        var logUnsynced = false
        var retryAfter: UInt64 = 0
        var stopDeadline: UInt64?
        /// Bytes applied since the last `malloc_trim`.
        var appliedSinceTrim = 0
        /// A burst was applied (or `trimEveryBytes`): trim once the node is quiet.
        var trimWanted = false
        /// Reads and writes seen at the last check, and since when that count has not moved.
        var lastActivity = 0
        var quietSince: UInt64 = 0
    }

    private func run() {
        var clocks = Clocks()
        var eviction = DiskTier.EvictionState()
        var sweeps = 0
        var random = SystemRandomNumberGenerator()
        var sweepHands: ([UInt8], [UInt8]) = ([], [])

        var busy = false
        while true {
            if busy {
                _ = wakeup.wait(timeout: .now() + .milliseconds(1))
            } else {
                _ = wakeup.wait(timeout: .now() + .milliseconds(50))
            }
            var now = monotonicNanoseconds()

            // 1. Log what was queued.
            appendLog(&clocks)

            // 2. Apply to LMDB when due.
            let (due, stopping) = state.withLock { s -> (Bool, Bool) in
                let work = !s.pending.isEmpty || s.clearQueued || !s.maintenance.isEmpty
                let due =
                    s.applyRequested || s.stopping || s.pending.count >= Writer.applyAtKeys
                    || s.pendingBytes >= applyAtBytes || (work && now - clocks.lastApply >= Writer.applyInterval)
                return (due && now >= clocks.retryAfter, s.stopping)
            }
            if due {
                applyPending(&clocks, eviction: &eviction)
                now = monotonicNanoseconds()
            }

            // 3. The once-a-second log sync of `everysec`.
            if fsync == .everysec && clocks.logUnsynced && now - clocks.lastLogSync >= 1_000_000_000 {
                do {
                    try timedSync { try log.sync() }
                    clocks.logUnsynced = false
                } catch {
                    logger.error("write-ahead log sync failed", metadata: ["error": "\(error)"])
                }
                clocks.lastLogSync = now
            }

            // 4. Background work: sweep expired entries, snapshot the hot keys.
            if now - clocks.lastSweep >= 100_000_000 {
                clocks.lastSweep = now
                sweep(&sweepHands)
                sweeps &+= 1
                if sweeps % 20 == 1 { checkResidency(&random) }
                trimIfQuiet(&clocks, now: now)
            }
            let snapshotWanted = state.withLock { $0.snapshotRequested }
            let snapshotDue = snapshotInterval > 0 && Double(now - clocks.lastSnapshot) / 1e9 >= snapshotInterval
            if snapshotWanted || snapshotDue {
                clocks.lastSnapshot = now
                state.withLock { $0.snapshotRequested = false }
                writeSnapshot()
            }

            // Poll fast while writes keep coming; otherwise sleep until woken.
            busy = state.withLock { s in
                let hasWork = !s.log.isEmpty || !s.pending.isEmpty
                s.writerIdle = !hasWork
                return hasWork
            }

            if stopping {
                if clocks.stopDeadline == nil { clocks.stopDeadline = now + 5_000_000_000 }
                let drained = state.withLock { $0.pending.isEmpty && $0.log.isEmpty && !$0.clearQueued }
                if drained || now >= clocks.stopDeadline! {
                    if !drained {
                        logger.error("closing with writes that could not be applied; they remain in the write-ahead log")
                    }
                    try? log.sync()
                    failAllWaiters(drained ? nil : StoreError(.closed, "store closed before the write was applied"))
                    finished.signal()
                    return
                }
            }
        }
    }

    /// Appends the queued log entries to the write-ahead log (and syncs it under `always`).
    private func appendLog(_ clocks: inout Clocks) {
        let (entries, last) = state.withLock { s -> ([LogEntry], UInt64) in
            let entries = s.log
            s.log = []
            return (entries, s.nextSequence - 1)
        }
        guard !entries.isEmpty else { return }
        var bytes: [UInt8] = []
        var estimate = 0
        for entry in entries {
            if case .write(let key, .put(let record)) = entry { estimate += 17 + key.count + record.count } else { estimate += 64 }
        }
        bytes.reserveCapacity(estimate)
        for entry in entries {
            switch entry {
            case .write(let key, .put(let record)): WriteAheadLog.frame(.put, key: key, record: record, into: &bytes)
            case .write(let key, .delete(let tombstone)): WriteAheadLog.frame(.delete, key: key, record: tombstone, into: &bytes)
            case .clear: WriteAheadLog.frame(.clear, key: [], record: nil, into: &bytes)
            }
        }
        do {
            try log.append(bytes)
            clocks.logUnsynced = true
            if fsync == .always {
                try timedSync { try log.sync() }
                clocks.logUnsynced = false
            }
        } catch {
            // Put the entries back in front and refuse writes until the log works again.
            let storeError = describe(error)
            counters.add(counters.writeErrors)
            logger.error("write-ahead log append failed; will retry", metadata: ["error": "\(storeError.message)"])
            let failed: [Completion] = state.withLock { s in
                s.log = entries + s.log
                s.failure = storeError
                return takeWaiters(&s.durableWaiters, upTo: last)
            }
            for completion in failed { completion(storeError) }
            clocks.retryAfter = monotonicNanoseconds() + 500_000_000
            return
        }
        let ready: [Completion] = state.withLock { s in
            s.loggedSequence = max(s.loggedSequence, last)
            if fsync == .always { s.durableSequence = max(s.durableSequence, last) }
            return takeWaiters(&s.durableWaiters, upTo: s.durableSequence)
        }
        for completion in ready { completion(nil) }
    }

    /// Applies everything pending to LMDB, syncs, empties the write-ahead log, and answers
    /// waiters; on failure keeps it pending for a retry.
    private func applyPending(_ clocks: inout Clocks, eviction: inout DiskTier.EvictionState) {
        // Everything pending must be in the log first: the log is emptied after the apply.
        appendLog(&clocks)
        let batch: Batch = state.withLock { s in
            swap(&s.pending, &s.applying)
            s.applyingBytes = s.pendingBytes
            s.pendingBytes = 0
            let batch = Batch(
                operations: s.applying, maintenance: s.maintenance, clear: s.clearQueued,
                lastSequence: s.nextSequence - 1, bytes: s.applyingBytes)
            s.maintenance = []
            s.clearApplying = s.clearQueued
            s.clearQueued = false
            s.applyRequested = false
            return batch
        }
        clocks.lastApply = monotonicNanoseconds()
        do {
            do {
                try apply(batch, eviction: &eviction)
            } catch let error as LMDBError where error.isMapFull {
                // The map filled before the budget check could evict: evict harder, retry once.
                logger.warning("disk tier map full; evicting before retrying")
                let txn = try disk.env.beginWrite()
                eviction.cutoff = nil
                let evicted = try disk.evict(
                    to: Int(Double(disk.budget) * 0.5), state: &eviction, maxVisits: Int.max, in: txn, isHot: isInMemory)
                try txn.commit()
                dropFromMemory(evicted)
                try apply(batch, eviction: &eviction)
            }
            if fsync != .never { try timedSync { try disk.env.sync() } }
            // Everything the log holds is now in LMDB (entries logged after this batch was taken
            // were applied too, or will be logged again): empty it.
            let logIsCurrent = state.withLock { $0.log.isEmpty }
            if logIsCurrent { try log.reset() }
            clocks.logUnsynced = false
        } catch {
            let storeError = describe(error)
            counters.add(counters.writeErrors)
            logger.error("disk tier apply failed; will retry", metadata: ["error": "\(storeError.message)"])
            state.withLock { s in
                for (key, queued) in s.applying where s.pending[key] == nil {
                    s.pending[key] = queued
                }
                s.applying = [:]
                s.pendingBytes += s.applyingBytes
                s.applyingBytes = 0
                s.maintenance = batch.maintenance + s.maintenance
                if batch.clear { s.clearQueued = true }
                s.clearApplying = false
                s.failure = storeError
            }
            clocks.retryAfter = monotonicNanoseconds() + 500_000_000
            answerSyncRequests(error: storeError)
            return
        }
        let ready: [Completion] = state.withLock { s in
            s.applying = [:]
            s.applyingBytes = 0
            backlog.store(s.pendingBytes, ordering: .relaxed)
            s.clearApplying = false
            s.failure = nil
            s.appliedSequence = max(s.appliedSequence, batch.lastSequence)
            if fsync != .never { s.durableSequence = max(s.durableSequence, batch.lastSequence) }
            return takeWaiters(&s.applyWaiters, upTo: s.appliedSequence)
                + takeWaiters(&s.durableWaiters, upTo: s.durableSequence)
        }
        for completion in ready { completion(nil) }
        answerSyncRequests(error: nil)
        // The applied batch's records were allocated on the event loops' threads and are freed
        // here; glibc keeps such memory in per-thread arenas, so a write burst would leave the
        // process far above its budgets for good. Hand it back after a burst, not after every
        // apply: malloc_trim walks every free chunk of every arena (the memory tier's churn
        // leaves thousands) with one madvise each, and the pages it returns fault back in when
        // reused. Trimming after each apply cost 8,000 madvise calls a second and put the event
        // loop's page faults into the tail latency of a read-heavy load.
        // During a sustained burst the trim waits for the burst to end: trimming after each big
        // batch handed LMDB's page buffers back to the kernel only for the next batch to fault
        // them in again (page faults and page clearing were a tenth of the writer's time in a
        // 4 KiB SET load). And it waits for the node to be quiet (`trimIfQuiet`): malloc_trim
        // holds each arena's lock while it walks it, and an event loop that allocated meanwhile
        // stalled for 20-70 ms at the end of every burst.
        clocks.appliedSinceTrim += batch.bytes
        if batch.bytes >= Self.burstBytes || clocks.appliedSinceTrim >= Self.trimEveryBytes {
            clocks.trimWanted = true
            clocks.appliedSinceTrim = 0
        }
    }

    /// Runs the wanted `malloc_trim` once no read or write has come in for `quietNanos`.
    /// (A node that stays busy keeps the memory: it reuses it. It is only not handed back.)
    private func trimIfQuiet(_ clocks: inout Clocks, now: UInt64) {
        guard clocks.trimWanted else { return }
        let memoryCounters = memory.counters
        let activity = memoryCounters.hits &+ memoryCounters.misses &+ Int(truncatingIfNeeded: state.withLock { $0.nextSequence })
        if activity != clocks.lastActivity {
            clocks.lastActivity = activity
            clocks.quietSince = now
            return
        }
        guard now - clocks.quietSince >= Self.quietNanos else { return }
        clocks.trimWanted = false
        #if os(Linux)
        _ = glibcMallocTrim(0)
        #endif
    }

    /// How long the node must see no reads or writes before a wanted trim runs.
    static let quietNanos: UInt64 = 300_000_000

    /// A batch at least this big is part of a write burst (a backlog built up).
    static let burstBytes = 8 << 20
    /// Steady writes trim once per this many bytes applied.
    static let trimEveryBytes = 256 << 20

    private func answerSyncRequests(error: StoreError?) {
        let waiters = state.withLock { s -> [Completion] in
            let w = s.syncRequested
            s.syncRequested = []
            return w
        }
        for waiter in waiters { waiter(error) }
    }

    private func takeWaiters(_ waiters: inout [(UInt64, Completion)], upTo sequence: UInt64) -> [Completion] {
        var ready: [Completion] = []
        waiters.removeAll { waiter in
            guard waiter.0 <= sequence else { return false }
            ready.append(waiter.1)
            return true
        }
        return ready
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
            try key.bytes.withUnsafeBytes { k in
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
        // Start evicting above `evictAbove`; once an episode runs, continue it down to `evictTo`.
        var evicted: [[UInt8]] = []
        let used = disk.usedBytes(txn)
        if used > Int(Double(disk.budget) * DiskTier.evictAbove)
            || (eviction.cutoff != nil && used > Int(Double(disk.budget) * DiskTier.evictTo))
        {
            evicted = try disk.evict(
                to: Int(Double(disk.budget) * DiskTier.evictTo), state: &eviction,
                maxVisits: used > disk.budget ? Int.max : 50_000, in: txn, isHot: isInMemory)
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

    /// Whether the disk tier's pages are all in the page cache (checked every two seconds):
    /// then a read that misses memory cannot block on the disk and may run on the event loop.
    let diskResident = Atomic<Bool>(false)

    private func checkResidency(_ random: inout SystemRandomNumberGenerator) {
        let share = disk.env.residentShare(using: &random)
        diskResident.store(share >= 0.99, ordering: .relaxed)
    }

    private func sweep(_ hands: inout ([UInt8], [UInt8])) {
        let nowMs = currentTimeMilliseconds()
        _ = memory.sweepExpired(now: nowMs, perShard: 256)
        do {
            let txn = try disk.env.beginWrite()
            let removed = try disk.sweepExpired(
                now: nowMs, limit: 1000, dataHand: &hands.0, tombstoneHand: &hands.1, in: txn)
            try txn.commit()
            counters.add(counters.diskExpirations, removed)
        } catch {
            logger.warning("expiry sweep failed", metadata: ["error": "\(error)"])
        }
    }

    private func failAllWaiters(_ error: StoreError?) {
        let all: [Completion] = state.withLock { s in
            let all = s.applyWaiters.map(\.1) + s.durableWaiters.map(\.1) + s.syncRequested
            s.applyWaiters = []
            s.durableWaiters = []
            s.syncRequested = []
            return all
        }
        for completion in all { completion(error) }
    }

    private func timedSync(_ body: () throws -> Void) throws {
        let start = monotonicNanoseconds()
        try body()
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

    private func describe(_ error: any Error) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? LMDBError, e.isMapFull || e.isNoSpace {
            return StoreError(.diskFull, "disk tier full: \(e)")
        }
        return StoreError(.storage, "disk tier write failed: \(error)")
    }
}

#if os(Linux)
/// glibc's `pthread_setname_np`, which the Glibc module does not export.
@_silgen_name("pthread_setname_np")
private func linuxSetThreadName(_ thread: pthread_t, _ name: UnsafePointer<CChar>) -> Int32

/// glibc's `malloc_trim(size_t pad)`, which the Glibc module does not export.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
