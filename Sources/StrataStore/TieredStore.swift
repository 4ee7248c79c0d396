import Logging
import Metrics
import Synchronization

/// What a key holds: a string, or one of the collection types (serialized by the server; the
/// store only keeps the tag beside the bytes, in the memory entry and the record).
public enum ValueKind: UInt8, Sendable, CaseIterable {
    case string = 0
    case hash = 1
    case list = 2
    case set = 3
    case zset = 4

    /// The name TYPE answers.
    public var name: String {
        switch self {
        case .string: "string"
        case .hash: "hash"
        case .list: "list"
        case .set: "set"
        case .zset: "zset"
        }
    }
}

/// A key's value and expiry as the store holds it.
public struct Entry: Sendable, Equatable {
    /// The value bytes.
    public var value: [UInt8]
    /// Absolute expiry in milliseconds since the Unix epoch; 0 = never.
    public var expiresAt: Int64
    /// What the bytes are.
    public var kind: ValueKind

    public init(value: [UInt8], expiresAt: Int64 = 0, kind: ValueKind = .string) {
        self.value = value
        self.expiresAt = expiresAt
        self.kind = kind
    }
}

/// What `TieredStore.update` does to a key after looking at its current entry.
public enum Mutation: Sendable, Equatable {
    /// Leave the key as it is.
    case none
    /// Store this value of this kind with this absolute expiry (0 = never).
    case set(value: [UInt8], expiresAt: Int64, kind: ValueKind = .string)
    /// Delete the key.
    case delete
    /// Keep the value, change the absolute expiry (0 = never; a time in the past deletes the key).
    case expire(at: Int64)
}

/// A condition on a write (SET's NX and XX).
public enum WriteCondition: Sendable {
    case always
    /// Only if the key does not exist (NX).
    case ifAbsent
    /// Only if the key exists (XX).
    case ifPresent
}

/// Identifies a point in the write queue, to wait until everything before it is durable.
public struct WriteTicket: Sendable, Hashable {
    let sequence: UInt64
}

/// Strata's node-local engine: a byte-budgeted in-memory LRU over an LMDB disk tier.
///
/// Every write goes to both tiers: memory at once, disk through the group-committing `Writer`.
/// Memory eviction therefore only drops the memory copy; a later read finds the key on disk and
/// promotes it back. Reads of hot keys take one shard lock and copy the value; nothing touches the
/// disk. Expired keys are never returned by either tier. See the module's README section "Design".
///
/// All methods are thread-safe. Reads that miss memory read LMDB on the calling thread: a server
/// should call them off its event loops (`get` on a memory hit never blocks on I/O; use
/// `getFromMemory` to try that first).
public final class TieredStore: Sendable {
    public let configuration: StoreConfiguration
    let logger: Logger
    let directory: DataDirectory
    let disk: DiskTier
    let memory: MemoryTier
    let writer: Writer
    let log: WriteAheadLog
    let locks = StripedLocks()
    let clock: HybridClock
    let compressor = ValueCompressor()
    let counters = StoreCounters()
    let isClosed = Atomic<Bool>(false)
    let warmStop = Atomic<Bool>(false)
    let warmFinished = Locked<[@Sendable () -> Void]?>([])

    /// Opens (creating if needed) the store in `path`, and starts the warm start in the background.
    public init(
        path: String,
        configuration: StoreConfiguration = StoreConfiguration(),
        logger: Logger = Logger(label: "strata.store"),
        metrics: any MetricsFactory = NOOPMetricsHandler.instance
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.directory = try DataDirectory(path: path)
        do {
            self.disk = try DiskTier(path: path, budget: configuration.diskBudget, noSync: true)
        } catch {
            directory.close()
            throw error
        }
        self.memory = MemoryTier(budget: configuration.memoryBudget, shardCount: configuration.memoryShards)
        self.clock = HybridClock(node: configuration.nodeID)
        do {
            self.log = try WriteAheadLog(directory: path)
            self.writer = Writer(
                disk: disk, memory: memory, log: log, snapshots: Snapshots(dataDirectory: path, logger: logger),
                counters: counters, configuration: configuration, logger: logger, metrics: metrics)
            writer.restoreFloor(disk.floorAtOpen)
            try writer.recover()
            clock.observe(writer.floor)
            // Records from before this start are older than the wall clock now (as far as the
            // nodes' clocks agree): a flush older than that must walk the disk tier, not empty it.
            clock.observe(Version(clock: UInt64(max(0, currentTimeMilliseconds())) << 16, node: 0))
        } catch {
            disk.close()
            directory.close()
            throw error as? StoreError ?? StoreError(.directoryUnusable, "cannot recover the write-ahead log in \(path): \(error)")
        }
        writer.start()
        if configuration.warmStart {
            startWarmUp()
        } else {
            counters.warmDone.store(true, ordering: .relaxed)
            warmFinished.withLock { $0 = nil }
        }
        logger.info(
            "store open",
            metadata: [
                "path": "\(path)", "memory": "\(configuration.memoryBudget)", "disk": "\(configuration.diskBudget)",
                "fsync": "\(configuration.fsync.rawValue)", "memoryShards": "\(memory.shardCount)",
            ])
    }

    /// Stops the warm start, commits and syncs every queued write, snapshots the hot keys, closes
    /// LMDB and releases the directory. Further calls do nothing.
    public func close() {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        warmStop.store(true, ordering: .relaxed)
        waitForWarmUp()
        writer.stop()
        writer.snapshots.close()
        log.close()
        disk.close()
        memory.removeAll()
        directory.close()
        logger.info("store closed")
    }

    deinit {
        close()
    }

    // MARK: Reads

    /// The string value of `key`, or nil (also for a key holding a collection: `entry` reads
    /// every kind).
    public func get(_ key: [UInt8]) -> [UInt8]? {
        key.withUnsafeBytes { k in (try? get(k) { [UInt8]($0) }) ?? nil }
    }

    // The string reads below (`get`, `getAfterMemoryMiss`, `getFromMemory`) serve strings only:
    // a key of another kind throws `StoreError.wrongType` (Redis' WRONGTYPE) without calling `body`.

    /// Calls `body` with the value of `key` (from memory, or from disk, which then promotes it).
    /// On a memory hit `body` runs under the shard lock: keep it short (copy the bytes out).
    public func get<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) throws(StoreError) -> R? {
        let hash = StableHash.hash(key)
        let now = currentTimeMilliseconds()
        var result: R? = nil
        var kind = ValueKind.string
        switch memory.get(key, hash: hash, now: now, { value, _, k in
            kind = k
            if k == .string { result = body(value) }
        }) {
        case .hit:
            guard kind == .string else { throw .wrongType }
            return result
        case .expired:
            scheduleExpiredCleanup(key, now: now)
            return nil
        case .miss:
            guard let entry = readThrough(key, hash: hash, now: now, promote: true, count: true) else { return nil }
            guard entry.kind == .string else { throw .wrongType }
            return entry.value.withUnsafeBytes(body)
        }
    }

    /// `get` for a read whose memory miss `getFromMemory` already counted: looks in memory again
    /// (another reader may have promoted the key meanwhile) without counting, then on disk.
    public func getAfterMemoryMiss<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) throws(StoreError) -> R? {
        let hash = StableHash.hash(key)
        let now = currentTimeMilliseconds()
        var result: R? = nil
        var kind = ValueKind.string
        if memory.peek(key, hash: hash, now: now, { value, _, k in
            kind = k
            if k == .string { result = body(value) }
        }) {
            guard kind == .string else { throw .wrongType }
            return result
        }
        guard let entry = readThrough(key, hash: hash, now: now, promote: true, count: true) else { return nil }
        guard entry.kind == .string else { throw .wrongType }
        return entry.value.withUnsafeBytes(body)
    }

    /// Like `get`, but only looks in memory: `.miss` means the caller should try `get` off the
    /// event loop. Never blocks on I/O.
    public func getFromMemory<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> MemoryRead<R> {
        let hash = StableHash.hash(key)
        let now = currentTimeMilliseconds()
        var result: R? = nil
        var kind = ValueKind.string
        switch memory.get(key, hash: hash, now: now, { value, _, k in
            kind = k
            if k == .string { result = body(value) }
        }) {
        case .hit: return kind == .string ? .hit(result!) : .wrongType
        case .expired:
            scheduleExpiredCleanup(key, now: now)
            return .absent
        case .miss: return .miss
        }
    }

    /// `getFromMemory` that hands `state` (a reply buffer) to `body` in place of a captured
    /// variable: a variable a closure captures costs a runtime exclusivity check on each access.
    public func getFromMemory<State>(
        _ key: UnsafeRawBufferPointer, into state: inout State, _ body: (inout State, UnsafeRawBufferPointer) -> Void
    ) -> MemoryRead<Void> {
        let hash = StableHash.hash(key)
        let now = currentTimeMilliseconds()
        var kind = ValueKind.string
        switch memory.get(key, hash: hash, now: now, { value, _, k in
            kind = k
            if k == .string { body(&state, value) }
        }) {
        case .hit: return kind == .string ? .hit(()) : .wrongType
        case .expired:
            scheduleExpiredCleanup(key, now: now)
            return .absent
        case .miss: return .miss
        }
    }

    /// The result of `getFromMemory`.
    public enum MemoryRead<R> {
        case hit(R)
        /// The key is known not to exist (it expired).
        case absent
        /// Not in memory: it may be on disk.
        case miss
        /// The key holds a collection, not a string.
        case wrongType
    }

    /// Makes `key`, of any kind, the most recently used in memory (reading it from disk into
    /// memory if it is only there); returns whether it exists (TOUCH).
    public func touch(_ key: UnsafeRawBufferPointer) -> Bool {
        let hash = StableHash.hash(key)
        let now = currentTimeMilliseconds()
        switch memory.get(key, hash: hash, now: now, { _, _, _ in }) {
        case .hit: return true
        case .expired:
            scheduleExpiredCleanup(key, now: now)
            return false
        case .miss: return readThrough(key, hash: hash, now: now, promote: true, count: true) != nil
        }
    }

    /// Whether `key` is in the memory tier now (so commands on it will not read the disk).
    public func isInMemory(_ key: UnsafeRawBufferPointer) -> Bool {
        memory.peek(key, hash: StableHash.hash(key), now: currentTimeMilliseconds(), { _, _, _ in })
    }

    /// The entry (value and expiry) of `key`, or nil. Promotes a disk hit into memory.
    public func entry(_ key: [UInt8]) -> Entry? {
        key.withUnsafeBytes { k in
            let hash = StableHash.hash(k)
            return locks.withLock(hash) { current(k, hash: hash, now: currentTimeMilliseconds(), promote: true) }
        }
    }

    /// Whether `key` exists (and has not expired).
    public func exists(_ key: [UInt8]) -> Bool {
        key.withUnsafeBytes { k in
            let hash = StableHash.hash(k)
            let now = currentTimeMilliseconds()
            if memory.peek(k, hash: hash, now: now, { _, _, _ in }) { return true }
            return locks.withLock(hash) { current(k, hash: hash, now: now, promote: false) } != nil
        }
    }

    /// The absolute expiry of `key` in ms since the epoch: nil if the key does not exist, 0 if it
    /// never expires.
    public func expiry(of key: [UInt8]) -> Int64? {
        key.withUnsafeBytes { k in
            let hash = StableHash.hash(k)
            let now = currentTimeMilliseconds()
            var expiry: Int64? = nil
            if memory.peek(k, hash: hash, now: now, { _, e, _ in expiry = e }) { return expiry }
            return locks.withLock(hash) { current(k, hash: hash, now: now, promote: false) }?.expiresAt
        }
    }

    /// Reads `key` from the write queue or disk, promoting it into memory if asked.
    func readThrough(_ key: UnsafeRawBufferPointer, hash: UInt64, now: Int64, promote: Bool, count: Bool = false) -> Entry? {
        locks.withLock(hash) { current(key, hash: hash, now: now, promote: promote, count: count) }
    }

    /// The current entry of `key`: memory, then the write queue, then disk. Caller holds the
    /// key's stripe lock. `count`: a client's read that missed memory, so the disk tier's hit or
    /// miss is counted (lookups made by writes are not reads of the disk tier).
    func current(_ key: UnsafeRawBufferPointer, hash: UInt64, now: Int64, promote: Bool, count: Bool = false) -> Entry? {
        var found: Entry? = nil
        if memory.peek(key, hash: hash, now: now, { value, expiry, kind in found = Entry(value: [UInt8](value), expiresAt: expiry, kind: kind) }) {
            return found
        }
        let storageKey = disk.storageKey(key)
        let record: [UInt8]?
        switch writer.lookup(storageKey) {
        case .deleted: record = nil
        case .put(let queued): record = queued
        case .none:
            do {
                record = try storageKey.withUnsafeBytes { try disk.read($0) }
            } catch {
                reportIOError("disk tier read failed", error)
                if count { counters.add(counters.diskMisses) }
                return nil
            }
        }
        guard let record, let entry = decode(record, key: key, storageKey: storageKey, now: now) else {
            if count { counters.add(counters.diskMisses) }
            return nil
        }
        if count { counters.add(counters.diskHits) }
        if promote {
            entry.value.withUnsafeBytes { _ = memory.set(key, hash: hash, value: $0, expiry: entry.expiresAt, kind: entry.kind) }
            counters.add(counters.promotions)
        }
        return entry
    }

    /// Decodes a stored record for `key`; nil if expired, a tombstone, another key's, or damaged.
    func decode(_ record: [UInt8], key: UnsafeRawBufferPointer, storageKey: [UInt8], now: Int64) -> Entry? {
        record.withUnsafeBytes { bytes -> Entry? in
            do {
                let header = try Record.header(bytes)
                if header.flags.contains(.tombstone) { return nil }
                if let full = try Record.fullKey(bytes, header), !full.elementsEqual(key) { return nil }
                if header.expiry != 0 && header.expiry <= now {
                    writer.enqueue(maintenance: .deleteIfExpired(storageKey, now: now))
                    return nil
                }
                return Entry(value: try Record.value(bytes, header, compressor: compressor), expiresAt: header.expiry, kind: header.kind)
            } catch {
                counters.add(counters.crcFailures)
                logger.warning(
                    "damaged record on disk treated as a miss and removed",
                    metadata: ["key": "\(String(decoding: key.prefix(64), as: UTF8.self))", "error": "\(error)"])
                writer.enqueue(maintenance: .deleteIfCorrupt(storageKey))
                return nil
            }
        }
    }

    /// Logs a disk read that failed (it is answered as a miss) and counts it in `strata_disk_io_errors_total`.
    func reportIOError(_ what: String, _ error: any Error) {
        writer.reportIOError(what, error)
    }

    private func scheduleExpiredCleanup(_ key: UnsafeRawBufferPointer, now: Int64) {
        writer.enqueue(maintenance: .deleteIfExpired(disk.storageKey(key), now: now))
    }
}
