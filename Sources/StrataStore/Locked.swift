#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value that is only reached under a pthread mutex: the one lock type of Strata's modules.
///
/// Why not `Synchronization.Mutex`: on Linux its lock and unlock live in the runtime, which is
/// not built with ThreadSanitizer, so TSan cannot see the synchronisation and reports races that
/// are not there. pthread mutexes are intercepted by TSan, and they cost the same uncontended.
///
/// `@unchecked Sendable`: `value` is only read or written inside `withLock`, under `mutex`.
public final class Locked<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Unchecked: the mutex already makes every access exclusive, and the runtime check on it was
    /// a measurable part of a memory-tier GET, which takes this lock once.
    @exclusivity(unchecked) private var value: Value

    public init(_ value: consuming Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
