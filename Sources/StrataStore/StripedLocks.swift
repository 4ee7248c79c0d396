#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of mutexes chosen by key hash, serialising the mutations of one key.
///
/// A mutation reads the key's current state (memory, pending writes, disk), decides, then writes
/// memory and queues the disk write; a disk hit being promoted into memory does the same. Holding
/// the key's stripe across those steps is what keeps a slow reader from promoting an old value over
/// a newer write, and makes read-modify-write commands (INCR, APPEND, SET NX) atomic.
///
/// `@unchecked Sendable`: the mutexes are only touched through pthread calls, which synchronise.
final class StripedLocks: @unchecked Sendable {
    private let locks: UnsafeMutablePointer<pthread_mutex_t>
    private let mask: UInt64

    init(count: Int = 1024) {
        precondition(count > 0 && count & (count - 1) == 0)
        locks = .allocate(capacity: count)
        for i in 0..<count { pthread_mutex_init(locks + i, nil) }
        mask = UInt64(count - 1)
    }

    deinit {
        for i in 0...Int(mask) { pthread_mutex_destroy(locks + i) }
        locks.deallocate()
    }

    @inline(__always)
    private func stripe(_ hash: UInt64) -> Int {
        // Use middle bits: the low bits pick memory shards, the high bits their buckets.
        Int(truncatingIfNeeded: (hash >> 20) & mask)
    }

    @inline(__always)
    func withLock<R>(_ hash: UInt64, _ body: () throws -> R) rethrows -> R {
        let lock = locks + stripe(hash)
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body()
    }

    /// Holds the stripes of all `hashes` at once (taken in stripe order, so two callers can
    /// never deadlock), for operations on several keys that must be atomic (MSETNX).
    func withLocks<R>(_ hashes: [UInt64], _ body: () throws -> R) rethrows -> R {
        let stripes = Set(hashes.map(stripe)).sorted()
        for s in stripes { pthread_mutex_lock(locks + s) }
        defer { for s in stripes.reversed() { pthread_mutex_unlock(locks + s) } }
        return try body()
    }
}
