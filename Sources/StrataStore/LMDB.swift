import CLMDB

#if canImport(Glibc)
import Glibc
#endif

/// Every LMDB return code, mapped in one place. `MDB_NOTFOUND` never surfaces as an error: the
/// wrappers turn it into nil.
struct LMDBError: Error, CustomStringConvertible {
    let code: Int32
    let operation: String

    var description: String {
        "\(operation): \(String(cString: mdb_strerror(code))) (\(code))"
    }

    /// The map (the disk budget plus headroom) has no room for the transaction.
    var isMapFull: Bool { code == MDB_MAP_FULL }
    /// The file system is full or over quota.
    var isNoSpace: Bool { code == ENOSPC || code == EDQUOT }

    @inline(__always)
    static func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(LMDBError) {
        if code != MDB_SUCCESS { throw LMDBError(code: code, operation: operation()) }
    }
}

/// An open LMDB environment.
///
/// `@unchecked Sendable`: an `MDB_env` may be used from any thread once open (we open it with
/// `MDB_NOTLS`, so read transactions are not tied to threads); the pointer itself never changes.
/// `close()` must only run after every transaction has ended, which `TieredStore.close()` ensures.
final class LMDBEnvironment: @unchecked Sendable {
    let handle: OpaquePointer
    let maxKeySize: Int
    let pageSize: Int
    /// A read-only mapping of the data file, as large as LMDB's map, kept for the residency
    /// check (`mincore` needs an address; LMDB does not tell where its own map is).
    private let residencyMap: UnsafeMutableRawPointer?
    private let residencyMapLength: Int

    init(path: String, mapSize: Int, maxDatabases: UInt32, noSync: Bool) throws(LMDBError) {
        var env: OpaquePointer?
        try LMDBError.check(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw LMDBError(code: ENOMEM, operation: "mdb_env_create") }
        do {
            try LMDBError.check(mdb_env_set_maxdbs(env, maxDatabases), "mdb_env_set_maxdbs")
            try LMDBError.check(mdb_env_set_maxreaders(env, 1024), "mdb_env_set_maxreaders")
            try LMDBError.check(mdb_env_set_mapsize(env, mapSize), "mdb_env_set_mapsize")
            // NOTLS: read transactions are used from whatever thread a task runs on.
            // NORDAHEAD: random reads; read-ahead would only evict useful pages.
            // NOSYNC: the writer syncs explicitly according to the fsync mode (see Writer).
            var flags = UInt32(MDB_NOTLS) | UInt32(MDB_NORDAHEAD)
            if noSync { flags |= UInt32(MDB_NOSYNC) }
            try LMDBError.check(mdb_env_open(env, path, flags, 0o644), "mdb_env_open \(path)")
            var dead: Int32 = 0
            // Clear reader slots left behind by a process that was killed.
            _ = mdb_reader_check(env, &dead)
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
        self.maxKeySize = Int(mdb_env_get_maxkeysize(env))
        var fd: Int32 = -1
        if mdb_env_get_fd(env, &fd) == 0, fd >= 0,
            let address = mmap(nil, mapSize, PROT_READ, MAP_SHARED, fd, 0), address != MAP_FAILED
        {
            self.residencyMap = address
            self.residencyMapLength = mapSize
        } else {
            self.residencyMap = nil
            self.residencyMapLength = 0
        }
        var stat = MDB_stat()
        mdb_env_stat(env, &stat)
        self.pageSize = Int(stat.ms_psize)
    }

    /// Flushes written data to disk (`force` also when opened with NOSYNC).
    func sync() throws(LMDBError) {
        try LMDBError.check(mdb_env_sync(handle, 1), "mdb_env_sync")
    }

    /// Pages in use at the end of the file (the file's high-water mark).
    var lastPageNumber: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return Int(info.me_last_pgno)
    }

    /// An estimate of the share of the data file's used pages that are in the page cache now:
    /// near 1, a read cannot wait on the disk. It asks `mincore` about `samples` pages chosen at
    /// random among the used ones, in LMDB's own mapping.
    ///
    /// Sampled rather than whole: `mincore` over a fresh mapping of the whole file looked up
    /// every page in the page cache, 70-85 ms of kernel time for a 4 GiB file, during which the
    /// event loops stalled for as long (the max latency of a read-heavy load was that check).
    /// 1,024 samples cost about a millisecond at any file size and tell 99% from 97% resident
    /// (the expected misses are 10 against 31). The mapping is made once, at open.
    func residentShare(samples: Int = 1024, using generator: inout some RandomNumberGenerator) -> Double {
        guard let base = residencyMap else { return 0 }
        let osPage = Int(getpagesize())
        let usedBytes = min((lastPageNumber + 1) * pageSize, residencyMapLength)
        let pages = usedBytes / osPage
        guard pages > 0, samples > 0 else { return 0 }
        var resident = 0
        var vector: UInt8 = 0
        for _ in 0..<samples {
            let page = Int.random(in: 0..<pages, using: &generator)
            guard mincore(base + page * osPage, osPage, &vector) == 0 else { return 0 }
            if vector & 1 != 0 { resident += 1 }
        }
        return Double(resident) / Double(samples)
    }

    func close() {
        if let residencyMap { munmap(residencyMap, residencyMapLength) }
        mdb_env_close(handle)
    }

    func beginRead() throws(LMDBError) -> LMDBTransaction {
        try LMDBTransaction(env: handle, flags: UInt32(MDB_RDONLY))
    }

    func beginWrite() throws(LMDBError) -> LMDBTransaction {
        try LMDBTransaction(env: handle, flags: 0)
    }
}

/// One LMDB transaction. Aborted when dropped unless committed; it cannot be copied, so it cannot
/// outlive its scope or be shared.
struct LMDBTransaction: ~Copyable {
    let handle: OpaquePointer

    init(env: OpaquePointer, flags: UInt32) throws(LMDBError) {
        var txn: OpaquePointer?
        try LMDBError.check(mdb_txn_begin(env, nil, flags, &txn), "mdb_txn_begin")
        self.handle = txn!
    }

    deinit {
        mdb_txn_abort(handle)
    }

    consuming func commit() throws(LMDBError) {
        let txn = handle
        discard self
        try LMDBError.check(mdb_txn_commit(txn), "mdb_txn_commit")
    }

    func openDatabase(_ name: String, create: Bool) throws(LMDBError) -> MDB_dbi {
        var dbi: MDB_dbi = 0
        try LMDBError.check(mdb_dbi_open(handle, name, create ? UInt32(MDB_CREATE) : 0, &dbi), "mdb_dbi_open \(name)")
        return dbi
    }

    /// The value under `key`, valid only until this transaction ends or writes; nil if absent.
    func get(_ dbi: MDB_dbi, _ key: UnsafeRawBufferPointer) throws(LMDBError) -> UnsafeRawBufferPointer? {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val()
        let rc = mdb_get(handle, dbi, &k, &v)
        if rc == MDB_NOTFOUND { return nil }
        try LMDBError.check(rc, "mdb_get")
        return UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)
    }

    func put(_ dbi: MDB_dbi, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(LMDBError) {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try LMDBError.check(mdb_put(handle, dbi, &k, &v, 0), "mdb_put")
    }

    /// Deletes `key`; returns whether it was there.
    @discardableResult
    func delete(_ dbi: MDB_dbi, _ key: UnsafeRawBufferPointer) throws(LMDBError) -> Bool {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        let rc = mdb_del(handle, dbi, &k, nil)
        if rc == MDB_NOTFOUND { return false }
        try LMDBError.check(rc, "mdb_del")
        return true
    }

    /// Empties a database.
    func clear(_ dbi: MDB_dbi) throws(LMDBError) {
        try LMDBError.check(mdb_drop(handle, dbi, 0), "mdb_drop")
    }

    func stat(_ dbi: MDB_dbi) -> MDB_stat {
        var stat = MDB_stat()
        mdb_stat(handle, dbi, &stat)
        return stat
    }

    /// Calls `body` with entries in key order, starting at the first key at or after `start`
    /// (or the first key), until it returns false. Pointers are valid only inside `body`.
    func forEach(
        _ dbi: MDB_dbi,
        from start: UnsafeRawBufferPointer?,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        var cursor: OpaquePointer?
        try LMDBError.check(mdb_cursor_open(handle, dbi, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        var k = MDB_val()
        var v = MDB_val()
        var rc: Int32
        if let start, start.count > 0 {
            k = MDB_val(mv_size: start.count, mv_data: UnsafeMutableRawPointer(mutating: start.baseAddress))
            rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE)
        } else {
            rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST)
        }
        while rc == MDB_SUCCESS {
            let goOn = try body(
                UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size),
                UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
            if !goOn { return }
            rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)
        }
        if rc != MDB_NOTFOUND { try LMDBError.check(rc, "mdb_cursor_get") }
    }

    /// The last key of `dbi` (copied), nil if it is empty.
    func lastKey(_ dbi: MDB_dbi) throws -> [UInt8]? {
        var cursor: OpaquePointer?
        try LMDBError.check(mdb_cursor_open(handle, dbi, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        var k = MDB_val()
        var v = MDB_val()
        let rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST)
        if rc == MDB_NOTFOUND { return nil }
        try LMDBError.check(rc, "mdb_cursor_get")
        return [UInt8](UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size))
    }
}
