#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CStrataSystem

/// A flag one thread sleeps on until another raises it, or a timeout passes: a binary semaphore
/// on a pthread mutex and condition variable, which ThreadSanitizer sees (as `Locked` explains).
///
/// Raising it twice before the sleeper wakes wakes it once: it says "look again", not "how many".
///
/// `@unchecked Sendable`: `raised` is only read or written with `mutex` held.
public final class Wakeup: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var raised = false

    public init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if !canImport(Darwin)
        // Timeouts against the monotonic clock, so a wall-clock step cannot stretch a sleep.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Raises the flag, waking the sleeper if there is one.
    public func signal() {
        pthread_mutex_lock(mutex)
        raised = true
        pthread_mutex_unlock(mutex)
        // Signalled after unlocking, so the woken thread does not block at once on the mutex.
        pthread_cond_signal(condition)
    }

    /// Sleeps until the flag is raised, and lowers it.
    public func wait() {
        pthread_mutex_lock(mutex)
        while !raised { pthread_cond_wait(condition, mutex) }
        raised = false
        pthread_mutex_unlock(mutex)
    }

    /// Sleeps until the flag is raised or `timeout` has passed; lowers it. Returns whether it was raised.
    @discardableResult
    public func wait(timeout: Duration) -> Bool {
        var deadline = timespec()
        #if canImport(Darwin)
        clock_gettime(CLOCK_REALTIME, &deadline)
        #else
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        #endif
        let total = UInt64(deadline.tv_nsec) + timeout.nanoseconds
        deadline.tv_sec += Int(total / 1_000_000_000)
        deadline.tv_nsec = Int(total % 1_000_000_000)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !raised {
            if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { break }
        }
        let wasRaised = raised
        raised = false
        return wasRaised
    }
}

/// A named OS thread of the store's own, started with a body and joined (or left to finish).
///
/// The store's background work blocks in LMDB commits and fsyncs for up to seconds at a time,
/// and the store is a library that brings no thread pool: so each long-running job owns a thread
/// rather than holding one of its embedder's pool or cooperative threads for the store's life.
public final class StoreThread: Sendable {
    /// The body, handed to the new thread through an unmanaged pointer.
    private final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    private let handle: Locked<pthread_t?>

    /// Starts `body` on a new thread named `name` (the kernel keeps its first 15 bytes).
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t? = nil
        #else
        var thread = pthread_t()
        #endif
        let result = pthread_create(&thread, nil, StoreThread.entry, start)
        precondition(result == 0, "cannot start thread \(name): error \(result)")
        handle = Locked(thread)
    }

    #if canImport(Darwin)
    private static let entry: @convention(c) (UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? = { raw in
        StoreThread.run(raw)
    }
    #else
    private static let entry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { raw in
        StoreThread.run(raw!)
    }
    #endif

    private static func run(_ raw: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        let start = Unmanaged<Start>.fromOpaque(raw).takeRetainedValue()
        // Named for `top -H` and `perf`: Foundation's `Thread.name` does not reach the kernel on Linux.
        _ = start.name.withCString { strata_set_thread_name($0) }
        start.body()
        return nil
    }

    /// Waits for the thread's body to return. Call at most once, or not at all after `detach`.
    public func join() {
        guard let thread = handle.withLock({ h -> pthread_t? in defer { h = nil }; return h }) else { return }
        pthread_join(thread, nil)
    }

    /// Lets the thread finish on its own; its resources go back when it does.
    public func detach() {
        guard let thread = handle.withLock({ h -> pthread_t? in defer { h = nil }; return h }) else { return }
        pthread_detach(thread)
    }
}

extension Duration {
    /// The duration in whole nanoseconds (negative durations count as zero).
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 && attoseconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}
