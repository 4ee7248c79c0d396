import Logging

/// The write-ahead log side of the writer: replaying it at open, and appending queued writes.
extension Writer {
    /// Re-applies what the write-ahead log holds (writes acknowledged before a crash), syncs, and
    /// empties the log. Called once, before `start`. A frame whose record is not newer than what
    /// LMDB holds is skipped (the log set aside for a batch may outlive the batch's commit), and
    /// a flush keeps records newer than itself.
    func recover() throws {
        var frames: [(WriteAheadLog.Kind, [UInt8], [UInt8])] = []
        _ = try log.replay { kind, key, record in frames.append((kind, key, record)) }
        var index = 0
        while index < frames.count {
            let txn = try disk.env.beginWrite()
            // Bounded transactions, so a long log never needs more dirty pages than LMDB's spare map.
            let end = min(frames.count, index + 50_000)
            for (kind, key, record) in frames[index..<end] where kind != .clear {
                // Newer than any snapshot record of the key: the warm start reads it from LMDB.
                if let hash = userKeyHash(storageKey: key, record: record) {
                    changedDuringWarmUp.withLock { _ = $0.insert(hash) }
                    changesRecorded.wrappingAdd(1, ordering: .relaxed)
                } else {
                    snapshotUntrusted.store(true, ordering: .relaxed)
                }
            }
            for (kind, key, record) in frames[index..<end] {
                try key.withUnsafeBytes { k in
                    switch kind {
                    case .put:
                        guard try !heldIsNewer(record, k, txn) else { return }
                        try record.withUnsafeBytes { try txn.put(disk.data, k, $0) }
                        try txn.delete(disk.tombstones, k)
                    case .delete:
                        let skip = try !record.isEmpty && heldIsNewer(record, k, txn)
                        guard !skip else { return }
                        try txn.delete(disk.data, k)
                        if !record.isEmpty { try record.withUnsafeBytes { try txn.put(disk.tombstones, k, $0) } }
                    case .clear:
                        guard let clear = Clear(bytes: key) else { break }
                        try disk.clear(clear.floor, full: false, in: txn)
                        restoreFloor(clear.floor)
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
        log.dropApplied()
        do {
            let read = try disk.env.beginRead()
            counters.diskBytes.store(disk.usedBytes(read), ordering: .relaxed)
            counters.diskItems.store(Int(read.stat(disk.data).ms_entries), ordering: .relaxed)
        } catch {
            reportIOError("reading the disk tier's size at open failed", error)
        }
    }

    /// The XXH64 of the user key a storage key stands for: itself, or for a derived storage key the
    /// full key its record carries (nil without a record).
    func userKeyHash(storageKey: [UInt8], record: [UInt8]) -> UInt64? {
        storageKey.withUnsafeBytes { k in
            if k.count < disk.maxKeySize { return StableHash.hash(k) }  // a plain key is its own storage key
            return record.withUnsafeBytes { r in
                guard let header = try? Record.header(r, verify: false), let full = try? Record.fullKey(r, header) else { return nil }
                return StableHash.hash(full)
            }
        }
    }

    /// Whether LMDB holds a record of `key` (value or tombstone) at least as new as `record`.
    private func heldIsNewer(_ record: [UInt8], _ key: UnsafeRawBufferPointer, _ txn: borrowing LMDBTransaction) throws -> Bool {
        guard let version = TieredStore.version(ofRecord: record) else { return false }
        for dbi in [disk.data, disk.tombstones] {
            if let held = try txn.get(dbi, key), let heldVersion = try? Record.header(held, verify: false).version,
                heldVersion >= version
            {
                return true
            }
        }
        return false
    }

    /// Appends the queued log entries to the write-ahead log (and syncs it under `always`).
    func appendLog(_ clocks: inout Clocks) {
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
            case .clear(let clear): WriteAheadLog.frame(.clear, key: clear.bytes, record: nil, into: &bytes)
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
            clocks.retryAfter = monotonicNanoseconds() + Self.retryPause.nanoseconds
            return
        }
        let ready: [Completion] = state.withLock { s in
            s.loggedSequence = max(s.loggedSequence, last)
            if fsync == .always { s.durableSequence = max(s.durableSequence, last) }
            return takeWaiters(&s.durableWaiters, upTo: s.durableSequence)
        }
        for completion in ready { completion(nil) }
    }

    /// The once-a-second log sync of `everysec`.
    func syncLogIfDue(_ clocks: inout Clocks, now: UInt64) {
        guard fsync == .everysec && clocks.logUnsynced && now - clocks.lastLogSync >= Self.logSyncInterval.nanoseconds else {
            return
        }
        do {
            try timedSync { try log.sync() }
            clocks.logUnsynced = false
        } catch {
            reportIOError("write-ahead log sync failed", error)
        }
        clocks.lastLogSync = now
    }

    /// Logs an I/O error that the writer survives (it retries, or the work is redone later) and
    /// counts it in `strata_disk_io_errors_total`.
    func reportIOError(_ what: String, _ error: any Error, level: Logger.Level = .error) {
        counters.add(counters.ioErrors)
        logger.log(level: level, "\(what)", metadata: ["error": "\(error)"])
    }
}
