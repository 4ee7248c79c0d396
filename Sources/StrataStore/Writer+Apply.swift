/// The writer thread's loop: log what was queued, group-commit it to LMDB, sync, answer waiters.
extension Writer {
    /// How long the writer sleeps between rounds while writes keep coming: an enqueue does not
    /// wake a busy writer, so this bounds how late a write reaches the log.
    static let busyPoll: Duration = .milliseconds(1)
    /// How long it sleeps when idle: enqueues wake it, so this only bounds how late timers fire.
    static let idlePoll: Duration = .milliseconds(50)
    /// Apply to LMDB at least this often while writes are pending, so a crash replays at most this much log.
    static let applyInterval: Duration = .seconds(1)
    /// How often `everysec` syncs the log: the writes it may lose in a power failure.
    static let logSyncInterval: Duration = .seconds(1)
    /// How long to wait before retrying a failed apply or log append, so a full disk is not hammered.
    static let retryPause: Duration = .milliseconds(500)
    /// How long `stop` keeps retrying writes that fail before giving up on them (they stay in the log).
    static let stopTimeout: Duration = .seconds(5)

    struct Batch {
        var operations: PendingTable
        var maintenance: [Maintenance]
        var clear: Clear?
        var lastSequence: UInt64
        /// Bytes of the queued records (`pendingBytes` when the batch was taken).
        var bytes: Int
    }

    /// The loop's timers (monotonic nanoseconds) and the trim heuristic's memory.
    struct Clocks {
        var lastApply = monotonicNanoseconds()
        var lastLogSync = monotonicNanoseconds()
        var lastSweep = monotonicNanoseconds()
        var lastSnapshot = monotonicNanoseconds()
        var lastResidencyCheck: UInt64?
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
        /// The table of the last applied batch, emptied with its slots kept for the next one.
        var spare = PendingTable()
        /// Memory-tier evictions plus promotions at the last snapshot (how much the hot set moved).
        var churnAtSnapshot = 0
    }

    func run() {
        var clocks = Clocks()
        var eviction = DiskTier.EvictionState()
        var random = SystemRandomNumberGenerator()
        var sweepHands: ([UInt8], [UInt8]) = ([], [])

        var busy = false
        while true {
            wakeup.wait(timeout: busy ? Self.busyPoll : Self.idlePoll)
            var now = monotonicNanoseconds()

            appendLog(&clocks)

            let (due, stopping) = state.withLock { s -> (Bool, Bool) in
                let work = !s.pending.isEmpty || s.clearQueued || !s.maintenance.isEmpty
                let due =
                    s.applyRequested || s.stopping || s.snapshotRequested || s.pending.count >= Writer.applyAtKeys
                    || s.pendingBytes >= applyAtBytes || (work && now - clocks.lastApply >= Writer.applyInterval.nanoseconds)
                return (due && now >= clocks.retryAfter, s.stopping)
            }
            if due {
                applyPending(&clocks, eviction: &eviction)
                now = monotonicNanoseconds()
            }

            syncLogIfDue(&clocks, now: now)
            runMaintenance(&clocks, now: now, sweepHands: &sweepHands, random: &random)

            // Poll fast while writes keep coming; otherwise sleep until woken.
            busy = state.withLock { s in
                let hasWork = !s.log.isEmpty || !s.pending.isEmpty
                s.writerIdle = !hasWork
                return hasWork
            }

            if stopping && finishIfDrained(&clocks, now: now) { return }
        }
    }

    /// At stop: once everything is applied (or `stopTimeout` passed), syncs the log, answers
    /// every waiter, and returns true.
    private func finishIfDrained(_ clocks: inout Clocks, now: UInt64) -> Bool {
        let deadline = clocks.stopDeadline ?? now + Self.stopTimeout.nanoseconds
        clocks.stopDeadline = deadline
        let drained = state.withLock { $0.pending.isEmpty && $0.log.isEmpty && !$0.clearQueued }
        guard drained || now >= deadline else { return false }
        if !drained {
            logger.error("closing with writes that could not be applied; they remain in the write-ahead log")
        }
        do {
            try log.sync()
        } catch {
            reportIOError("write-ahead log sync at close failed", error)
        }
        failAllWaiters(drained ? nil : StoreError(.closed, "store closed before the write was applied"))
        return true
    }

    /// Applies everything pending to LMDB, syncs, empties the write-ahead log, and answers
    /// waiters; on failure keeps it pending for a retry.
    func applyPending(_ clocks: inout Clocks, eviction: inout DiskTier.EvictionState) {
        // Everything pending must be in the log first: the log is emptied after the apply.
        appendLog(&clocks)
        clocks.spare.removeAll(keepingCapacity: true)  // the last batch is gone: no copy on write
        let batch: Batch = state.withLock { s in
            swap(&s.pending, &s.applying)
            swap(&s.pending, &clocks.spare)
            s.applyingBytes = s.pendingBytes
            s.pendingBytes = 0
            let batch = Batch(
                operations: s.applying, maintenance: s.maintenance, clear: s.queuedClear,
                lastSequence: s.nextSequence - 1, bytes: s.applyingBytes)
            s.maintenance = []
            s.clearApplying = s.clearQueued
            s.queuedClear = nil
            s.applyRequested = false
            return batch
        }
        clocks.lastApply = monotonicNanoseconds()
        do {
            // The log so far holds this batch: set it aside, new writes go to a new one.
            try log.rotate()
            do {
                try apply(batch, eviction: &eviction)
            } catch let error as LMDBError where error.isMapFull {
                try evictForFullMap(&eviction)
                try apply(batch, eviction: &eviction)
            }
            if fsync != .never { try timedSync { try disk.env.sync() } }
            // The set-aside log's writes are all in LMDB now.
            log.dropApplied()
        } catch {
            let storeError = describe(error)
            counters.add(counters.writeErrors)
            logger.error("disk tier apply failed; will retry", metadata: ["error": "\(storeError.message)"])
            state.withLock { s in
                for (key, queued) in s.applying where s.pending[key] == nil {
                    s.pending.set(queued, for: key)
                }
                s.applying = PendingTable()
                s.pendingBytes += s.applyingBytes
                s.applyingBytes = 0
                s.maintenance = batch.maintenance + s.maintenance
                if let clear = batch.clear, s.queuedClear == nil { s.queuedClear = clear }
                s.clearApplying = false
                s.failure = storeError
            }
            clocks.retryAfter = monotonicNanoseconds() + Self.retryPause.nanoseconds
            answerSyncRequests(error: storeError)
            return
        }
        // The applied table leaves the lock in O(1): the next apply empties it outside the lock,
        // keeping its slots, and makes it the table new writes fill (no growing under the lock).
        let ready: [Completion] = state.withLock { s in
            swap(&clocks.spare, &s.applying)
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
        noteApplied(bytes: batch.bytes, &clocks)
    }

    /// Writes one batch (and any maintenance) in LMDB transactions of `commitEveryKeys` keys,
    /// evicting if the budget nears. A crash between two of them loses nothing: the log still
    /// holds the whole batch, and replaying it is idempotent.
    private func apply(_ batch: Batch, eviction: inout DiskTier.EvictionState) throws {
        // The snapshot's journal learns of these writes (synced) before LMDB commits them; a
        // flush ends the snapshot first.
        if batch.clear != nil { snapshots.invalidate() }
        var hashes: [UInt64] = []
        hashes.reserveCapacity(batch.operations.count)
        for (_, queued) in batch.operations { hashes.append(queued.keyHash) }
        try snapshots.record(hashes, sync: fsync != .never)
        var txn = try disk.env.beginWrite()
        var keysInTransaction = 0
        if let clear = batch.clear { try disk.clear(clear.floor, full: clear.full, in: txn) }
        let hasTombstones = txn.stat(disk.tombstones).ms_entries > 0
        for (key, queued) in batch.operations {
            if keysInTransaction == Writer.commitEveryKeys {
                try txn.commit()
                txn = try disk.env.beginWrite()
                keysInTransaction = 0
            }
            keysInTransaction += 1
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
        try applyMaintenance(batch.maintenance, in: txn)
        let evicted = try evictIfNearBudget(&eviction, in: txn)
        let usedAfter = disk.usedBytes(txn)
        let items = Int(txn.stat(disk.data).ms_entries)
        try txn.commit()
        counters.add(counters.commits)
        counters.diskBytes.store(usedAfter, ordering: .relaxed)
        counters.diskItems.store(items, ordering: .relaxed)
        dropFromMemory(evicted)
    }

    func answerSyncRequests(error: StoreError?) {
        let waiters = state.withLock { s -> [Completion] in
            let w = s.syncRequested
            s.syncRequested = []
            return w
        }
        for waiter in waiters { waiter(error) }
    }

    func takeWaiters(_ waiters: inout [(UInt64, Completion)], upTo sequence: UInt64) -> [Completion] {
        var ready: [Completion] = []
        waiters.removeAll { waiter in
            guard waiter.0 <= sequence else { return false }
            ready.append(waiter.1)
            return true
        }
        return ready
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

    /// Runs a sync, counting it and timing it for `strata_fsync_duration_seconds`.
    func timedSync(_ body: () throws -> Void) throws {
        let start = monotonicNanoseconds()
        try body()
        let elapsed = monotonicNanoseconds() - start
        counters.add(counters.fsyncs)
        counters.add(counters.fsyncNanoseconds, Int(elapsed))
        fsyncTimer.recordNanoseconds(Int64(elapsed))
    }

    func describe(_ error: any Error) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? LMDBError, e.isMapFull || e.isNoSpace {
            return StoreError(.diskFull, "disk tier full: \(e)")
        }
        return StoreError(.storage, "disk tier write failed: \(error)")
    }
}
