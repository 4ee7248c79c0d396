/// What replication and repair need from a node's store: records as they are stored (values and
/// tombstones, with their versions), and applying another replica's record when it is newer.
///
/// Every replica keeps the record with the highest `Version` (last writer wins): applying the
/// same set of records in any order leaves every replica with the same value. A delete is a
/// tombstone record with its own version, kept for `tombstoneTTL`, so an older write that
/// arrives late cannot bring the key back.
extension TieredStore {
    /// The record stored for `key` (a value or a tombstone), including writes not yet applied to
    /// LMDB; nil if there is neither.
    public func exportRecord(_ key: [UInt8]) -> [UInt8]? {
        key.withUnsafeBytes { k in
            locks.withLock(StableHash.hash(k)) { currentRecord(k) }
        }
    }

    /// Like `exportRecord`, but only if the record is still in the write queue (just written):
    /// never reads the disk, so it may run on an event loop. nil: call `exportRecord`.
    public func exportQueuedRecord(_ key: [UInt8]) -> [UInt8]? {
        key.withUnsafeBytes { k in
            locks.withLock(StableHash.hash(k)) {
                switch writer.lookup(disk.storageKey(k)) {
                case .put(let record): return record
                case .deleted(let tombstone): return tombstone
                case .none: return nil
                }
            }
        }
    }

    /// Where a record scan continues: which database, and the storage key it stopped after.
    public struct RecordCursor: Sendable, Equatable {
        var tombstones: Bool
        var after: [UInt8]?

        public static let start = RecordCursor(tombstones: false, after: nil)

        /// The cursor as bytes (for a peer to send back), and from them.
        public var bytes: [UInt8] { [tombstones ? 1 : 0] + (after ?? []) }
        public init?(bytes: [UInt8]) {
            guard let first = bytes.first, first <= 1 else { return nil }
            tombstones = first == 1
            after = bytes.count > 1 ? Array(bytes.dropFirst()) : nil
        }
        init(tombstones: Bool, after: [UInt8]?) {
            self.tombstones = tombstones
            self.after = after
        }
    }

    /// Every stored record (values, then tombstones), `limit` at a time, for repairing another
    /// replica: the records after `cursor` and where to continue (nil when done).
    /// A scan that starts at `RecordCursor.start` first waits until every write made before it is
    /// in the disk tier; later batches do not wait again (writes made during a scan reach other
    /// replicas by replication, not by the scan).
    public func scanRecords(from cursor: RecordCursor, limit: Int) throws -> (records: [(key: [UInt8], record: [UInt8])], next: RecordCursor?) {
        if cursor == .start { try waitCommitted() }
        let dbi = cursor.tombstones ? disk.tombstones : disk.data
        let (records, next) = try disk.scanRecords(dbi, after: cursor.after, limit: max(1, limit))
        let pairs = records.map { (key: $0.0, record: $0.1) }
        if let next { return (pairs, RecordCursor(tombstones: cursor.tombstones, after: next)) }
        return (pairs, cursor.tombstones ? nil : RecordCursor(tombstones: true, after: nil))
    }

    /// The version a record carries; nil if the record is damaged.
    public static func version(ofRecord record: [UInt8]) -> Version? {
        record.withUnsafeBytes { try? Record.header($0).version }
    }

    /// Whether a record is a tombstone (a delete).
    public static func isTombstone(_ record: [UInt8]) -> Bool {
        record.withUnsafeBytes { (try? Record.header($0))?.flags.contains(.tombstone) ?? false }
    }

    /// Stores `record` (from another replica) for `key` if its version is newer than the one held
    /// here. Returns whether it was applied. Throws for a damaged record or one for another key.
    @discardableResult
    public func applyRecord(_ key: [UInt8], record: [UInt8]) throws -> Bool {
        let header: Record.Header
        do {
            header = try record.withUnsafeBytes { try Record.header($0) }
            if let full = try record.withUnsafeBytes({ try Record.fullKey($0, try Record.header($0, verify: false)).map { [UInt8]($0) } }),
                full != key
            {
                throw StoreError(.wrongValue, "replicated record belongs to another key")
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.wrongValue, "replicated record is damaged: \(error)")
        }
        // A record from before the last flush stays flushed, however late it arrives.
        if header.version <= writer.floor { return false }
        // Later local writes must order after this one, even if this node's clock is behind.
        clock.observe(header.version)
        return try key.withUnsafeBytes { k in
            let hash = StableHash.hash(k)
            return try locks.withLock(hash) {
                try checkWritable()
                if let held = currentRecord(k), let version = TieredStore.version(ofRecord: held), version >= header.version {
                    return false
                }
                let storageKey = disk.storageKey(k)
                if header.flags.contains(.tombstone) {
                    memory.remove(k, hash: hash)
                    writer.enqueue(storageKey, .delete(tombstone: record), keyHash: hash)
                    return true
                }
                let value = try record.withUnsafeBytes { try Record.value($0, header, compressor: compressor) }
                let now = currentTimeMilliseconds()
                if header.expiry == 0 || header.expiry > now {
                    value.withUnsafeBytes { _ = memory.set(k, hash: hash, value: $0, expiry: header.expiry, kind: header.kind) }
                } else {
                    memory.remove(k, hash: hash)
                }
                writer.enqueue(storageKey, .put(record), keyHash: hash)
                return true
            }
        }
    }

    /// Drops this node's copy of `key` without a tombstone: for a node that held the key only
    /// while its owners were down, once they have it.
    public func discard(_ key: [UInt8]) throws {
        try key.withUnsafeBytes { k in
            let hash = StableHash.hash(k)
            try locks.withLock(hash) {
                try checkWritable()
                memory.remove(k, hash: hash)
                writer.enqueue(disk.storageKey(k), .delete(tombstone: nil), keyHash: hash)
            }
        }
    }

    /// The newest record of `key`: queued, else on disk (value, else tombstone). Caller holds the
    /// key's stripe lock.
    func currentRecord(_ key: UnsafeRawBufferPointer) -> [UInt8]? {
        let storageKey = disk.storageKey(key)
        switch writer.lookup(storageKey) {
        case .put(let record): return record
        case .deleted(let tombstone): return tombstone
        case .none:
            return storageKey.withUnsafeBytes { k in
                do {
                    if let record = try disk.read(k) { return record }
                } catch {
                    reportIOError("disk tier read failed", error)
                }
                do {
                    return try disk.read(k, in: disk.tombstones)
                } catch {
                    reportIOError("disk tier tombstone read failed", error)
                    return nil
                }
            }
        }
    }
}
