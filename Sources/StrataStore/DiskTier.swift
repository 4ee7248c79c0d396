import CLMDB

/// The disk tier: one LMDB environment in the data directory.
///
/// Databases: `data` (storage key → record), `tombstones` (storage key → tombstone record),
/// `snapshot` (the hot-key list older versions kept for warm start; read as a fallback) and `meta` (format version,
/// the seed for long-key hashes).
///
/// Storage keys: LMDB keys are 1 to `maxKeySize` (511) bytes. A user key of 1 to `maxKeySize - 1`
/// bytes is its own storage key. Any other key (empty, or `maxKeySize` bytes and longer, such as
/// long URLs) gets a derived storage key of exactly `maxKeySize` bytes: its first
/// `maxKeySize - 16` bytes (zero-padded) then two XXH64 hashes of the whole key with this
/// directory's random seed; the record then carries the full key, which reads check. Derived keys
/// cannot collide with plain ones (those are shorter), and the random seed keeps anyone from
/// crafting two keys that collide with each other.
///
/// Reads may run on any thread. Everything that writes runs on the writer thread (`Writer`).
final class DiskTier: Sendable {
    let env: LMDBEnvironment
    let data: MDB_dbi
    let tombstones: MDB_dbi
    let snapshot: MDB_dbi
    let meta: MDB_dbi
    let seed: UInt64
    /// The floor of the last flush applied to this tier (`meta` key `flush`).
    let floorAtOpen: Version
    let budget: Int
    let maxKeySize: Int

    /// Extra map space beyond the budget: LMDB's copy-on-write needs free pages to commit while
    /// older readers still see the previous pages.
    static func mapSize(budget: Int) -> Int {
        budget + budget / 4 + (32 << 20)
    }

    init(path: String, budget: Int, noSync: Bool) throws {
        let env: LMDBEnvironment
        do {
            env = try LMDBEnvironment(path: path, mapSize: DiskTier.mapSize(budget: budget), maxDatabases: 8, noSync: noSync)
        } catch {
            throw StoreError(.directoryUnusable, "cannot open the disk tier in \(path): \(error)")
        }
        self.env = env
        self.budget = budget
        self.maxKeySize = env.maxKeySize
        do {
            let txn = try env.beginWrite()
            let dataDB = try txn.openDatabase("data", create: true)
            let tombstoneDB = try txn.openDatabase("tombstones", create: true)
            let snapshotDB = try txn.openDatabase("snapshot", create: true)
            let metaDB = try txn.openDatabase("meta", create: true)
            let formatKey = Array("format".utf8)
            let seedKey = Array("seed".utf8)
            let storedFormat = try formatKey.withUnsafeBytes { try txn.get(metaDB, $0).map { [UInt8]($0) } }
            if let storedFormat {
                guard storedFormat.count == 1, storedFormat[0] <= Record.formatVersion else {
                    throw StoreError(
                        .incompatibleDirectory,
                        "the disk tier in \(path) was written by a newer Strata (record format \(storedFormat.first ?? 0), this build reads up to \(Record.formatVersion))")
                }
            } else {
                try formatKey.withUnsafeBytes { k in try [Record.formatVersion].withUnsafeBytes { try txn.put(metaDB, k, $0) } }
            }
            var directorySeed: UInt64
            if let stored = try seedKey.withUnsafeBytes({ try txn.get(metaDB, $0) }), stored.count == 8 {
                directorySeed = stored.loadUnaligned(as: UInt64.self)
            } else {
                directorySeed = UInt64.random(in: 1...UInt64.max)
                try seedKey.withUnsafeBytes { k in try withUnsafeBytes(of: &directorySeed) { try txn.put(metaDB, k, $0) } }
            }
            floorAtOpen = try DiskTier.floorKey.withUnsafeBytes { try txn.get(metaDB, $0) }.flatMap { Version(bytes: $0) } ?? .zero
            data = dataDB
            tombstones = tombstoneDB
            snapshot = snapshotDB
            meta = metaDB
            seed = directorySeed
            try txn.commit()
        } catch let error as StoreError {
            env.close()
            throw error
        } catch {
            env.close()
            throw StoreError(.directoryUnusable, "cannot initialise the disk tier in \(path): \(error)")
        }
    }

    func close() { env.close() }

    // MARK: Storage keys

    @inline(__always)
    func isDerived(_ key: UnsafeRawBufferPointer) -> Bool {
        key.count == 0 || key.count >= maxKeySize
    }

    /// Calls `body` with the storage key for user `key`.
    @inline(__always)
    func withStorageKey<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if !isDerived(key) { return try body(key) }
        return try derivedKey(key).withUnsafeBytes(body)
    }

    /// The storage key for user `key`, as an array (the writer's queue keeps it).
    func storageKey(_ key: UnsafeRawBufferPointer) -> [UInt8] {
        isDerived(key) ? derivedKey(key) : [UInt8](key)
    }

    private func derivedKey(_ key: UnsafeRawBufferPointer) -> [UInt8] {
        let prefix = maxKeySize - 16
        var result = [UInt8](repeating: 0, count: maxKeySize)
        let n = min(prefix, key.count)
        for i in 0..<n { result[i] = key[i] }
        var h1 = StableHash.hash(key, seed: seed).littleEndian
        var h2 = StableHash.hash(key, seed: seed ^ 0x5bd1_e995_5bd1_e995).littleEndian
        withUnsafeBytes(of: &h1) { for i in 0..<8 { result[prefix + i] = $0[i] } }
        withUnsafeBytes(of: &h2) { for i in 0..<8 { result[prefix + 8 + i] = $0[i] } }
        return result
    }

    // MARK: Reads

    /// The record stored under `storageKey` in `dbi`, copied out of the transaction.
    func read(_ storageKey: UnsafeRawBufferPointer, in dbi: MDB_dbi? = nil) throws -> [UInt8]? {
        let txn = try env.beginRead()
        return try txn.get(dbi ?? data, storageKey).map { [UInt8]($0) }
    }

    /// Entries in the data database (live and expired-but-not-yet-swept keys).
    func count() throws -> Int {
        let txn = try env.beginRead()
        return Int(txn.stat(data).ms_entries)
    }

    /// Bytes of LMDB pages holding our databases.
    func usedBytes(_ txn: borrowing LMDBTransaction) -> Int {
        var pages = 0
        for dbi in [data, tombstones, snapshot, meta] {
            let s = txn.stat(dbi)
            pages += Int(s.ms_branch_pages) + Int(s.ms_leaf_pages) + Int(s.ms_overflow_pages)
        }
        return pages * env.pageSize
    }

    /// The user key a record under `storageKey` belongs to.
    func userKey(storageKey: UnsafeRawBufferPointer, record: UnsafeRawBufferPointer) -> [UInt8]? {
        guard isDerived(storageKey) else { return [UInt8](storageKey) }
        guard let header = try? Record.header(record, verify: false),
            let full = try? Record.fullKey(record, header)
        else { return nil }
        return [UInt8](full)
    }

    /// The live user keys (with their absolute expiry, 0 = none) among the `limit` entries after
    /// storage key `cursor` (or from the start), and the storage key to continue after (nil at
    /// the end).
    func scan(after cursor: [UInt8]?, limit: Int, now: Int64) throws -> (keys: [ScannedKey], next: [UInt8]?) {
        let txn = try env.beginRead()
        var keys: [ScannedKey] = []
        var last: [UInt8]? = nil
        var seen = 0
        var reachedEnd = true
        let start = cursor ?? []
        try start.withUnsafeBytes { startBytes in
            try txn.forEach(data, from: cursor == nil ? nil : startBytes) { key, record in
                if let cursor, key.elementsEqual(cursor) { return true }
                if seen >= limit {
                    reachedEnd = false
                    return false
                }
                seen += 1
                last = [UInt8](key)
                if let header = try? Record.header(record, verify: false),
                    header.expiry == 0 || header.expiry > now,
                    let user = userKey(storageKey: key, record: record)
                {
                    keys.append(ScannedKey(key: user, expiresAt: header.expiry, kind: header.kind))
                }
                return true
            }
        }
        return (keys, reachedEnd ? nil : last)
    }

    /// A live user key picked at random: by position among up to 4,096 entries; beyond that,
    /// the first live key at a random point between the first and last storage keys (close to
    /// uniform when keys share a prefix and differ after it, as most key schemes do). nil if no
    /// live key is found.
    func randomKey(now: Int64) throws -> [UInt8]? {
        let txn = try env.beginRead()
        let entries = Int(txn.stat(data).ms_entries)
        guard entries > 0 else { return nil }
        func live(_ key: UnsafeRawBufferPointer, _ record: UnsafeRawBufferPointer) -> [UInt8]? {
            guard let header = try? Record.header(record, verify: false), header.expiry == 0 || header.expiry > now else { return nil }
            return userKey(storageKey: key, record: record)
        }
        if entries <= 4096 {
            // Several tries past expired entries not yet swept, then the first live one.
            for _ in 0..<4 {
                var skip = Int.random(in: 0..<entries)
                var picked: [UInt8]? = nil
                try txn.forEach(data, from: nil) { key, record in
                    if skip > 0 {
                        skip -= 1
                        return true
                    }
                    picked = live(key, record)
                    return false
                }
                if let picked { return picked }
            }
        } else {
            var first: [UInt8] = []
            try txn.forEach(data, from: nil) { key, _ in
                first = [UInt8](key)
                return false
            }
            let last = try txn.lastKey(data) ?? first
            var common = 0
            while common < min(first.count, last.count) && first[common] == last[common] { common += 1 }
            for _ in 0..<4 {
                var start = Array(first.prefix(common))
                let low = common < first.count ? first[common] : 0
                let high = common < last.count ? last[common] : 255
                start.append(UInt8.random(in: min(low, high)...max(low, high)))
                for _ in 0..<8 { start.append(UInt8.random(in: 0...255)) }
                var picked: [UInt8]? = nil
                var looked = 0
                try start.withUnsafeBytes { from in
                    try txn.forEach(data, from: from) { key, record in
                        looked += 1
                        picked = live(key, record)
                        return picked == nil && looked < 64
                    }
                }
                if let picked { return picked }
            }
        }
        // Mostly expired: the first live key, if any.
        var picked: [UInt8]? = nil
        try txn.forEach(data, from: nil) { key, record in
            picked = live(key, record)
            return picked == nil
        }
        return picked
    }

    /// Up to `limit` (user key, record) pairs of `dbi` after storage key `cursor`, and the storage
    /// key to continue after (nil at the end).
    func scanRecords(_ dbi: MDB_dbi, after cursor: [UInt8]?, limit: Int) throws -> (records: [([UInt8], [UInt8])], next: [UInt8]?) {
        let txn = try env.beginRead()
        var records: [([UInt8], [UInt8])] = []
        var last: [UInt8]? = nil
        var reachedEnd = true
        let start = cursor ?? []
        try start.withUnsafeBytes { startBytes in
            try txn.forEach(dbi, from: cursor == nil ? nil : startBytes) { key, record in
                if let cursor, key.elementsEqual(cursor) { return true }
                if records.count >= limit {
                    reachedEnd = false
                    return false
                }
                last = [UInt8](key)
                if let user = userKey(storageKey: key, record: record) {
                    records.append((user, [UInt8](record)))
                }
                return true
            }
        }
        return (records, reachedEnd ? nil : last)
    }

    /// The keys of the hot-key list older versions kept (the warm start of such a directory),
    /// hottest first.
    func readSnapshot() throws -> [[UInt8]] {
        let txn = try env.beginRead()
        var keys: [[UInt8]] = []
        try txn.forEach(snapshot, from: nil) { _, chunk in
            var offset = 0
            while offset + 4 <= chunk.count {
                let n = Int(UInt32(littleEndian: chunk.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                offset += 4
                guard offset + n <= chunk.count else { break }
                keys.append([UInt8](UnsafeRawBufferPointer(rebasing: chunk[offset..<offset + n])))
                offset += n
            }
            return true
        }
        return keys
    }

    // MARK: Writes (writer thread only)

    static let floorKey = Array("flush".utf8)

    /// Removes every record (value or tombstone) whose version is at most `floor`, and the
    /// snapshot, and records `floor` as the last flush. `full`: nothing is newer, so the
    /// databases are emptied outright; otherwise they are walked.
    func clear(_ floor: Version, full: Bool, in txn: borrowing LMDBTransaction) throws {
        if full {
            try txn.clear(data)
            try txn.clear(tombstones)
        } else {
            for dbi in [data, tombstones] {
                // Usually few records are newer: keep those, empty the database, put them back.
                // Many newer ones: delete the older ones instead.
                let keepAtMost = 100_000
                var newer: [([UInt8], [UInt8])] = []
                var tooMany = false
                try txn.forEach(dbi, from: nil) { key, record in
                    // A damaged record has no trustworthy version: it goes too.
                    if let version = try? Record.header(record, verify: false).version, version > floor {
                        newer.append(([UInt8](key), [UInt8](record)))
                        tooMany = newer.count > keepAtMost
                    }
                    return !tooMany
                }
                if !tooMany {
                    try txn.clear(dbi)
                    for (key, record) in newer {
                        try key.withUnsafeBytes { k in try record.withUnsafeBytes { try txn.put(dbi, k, $0) } }
                    }
                    continue
                }
                var older: [[UInt8]] = []
                try txn.forEach(dbi, from: nil) { key, record in
                    let version = try? Record.header(record, verify: false).version
                    if version.map({ $0 <= floor }) ?? true { older.append([UInt8](key)) }
                    return true
                }
                for key in older { try key.withUnsafeBytes { _ = try txn.delete(dbi, $0) } }
            }
        }
        try txn.clear(snapshot)
        guard floor > .zero else { return }
        try DiskTier.floorKey.withUnsafeBytes { k in try floor.bytes.withUnsafeBytes { try txn.put(meta, k, $0) } }
    }

}
