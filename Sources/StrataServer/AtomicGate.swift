import Foundation
import NIOCore
import Synchronization

/// What holds a node's gate exclusively: a transaction or a script, and since when.
final class AtomicUnit: Sendable {
    enum Kind: Sendable, Equatable {
        case transaction
        case script
        case function
    }

    let kind: Kind
    let startedAt = ContinuousClock.now
    /// Whether it has run a write (SCRIPT KILL refuses to stop a script that wrote: the data
    /// would be left half-changed).
    let wrote = Atomic<Bool>(false)
    /// Set by SCRIPT KILL / FUNCTION KILL; the script's hook sees it and stops.
    let killRequested = Atomic<Bool>(false)
    /// Whether a timer will answer this unit's waiters BUSY at the threshold.
    let busyTimerArmed = Atomic<Bool>(false)

    init(kind: Kind) {
        self.kind = kind
    }

    /// The BUSY reply other clients get once this unit has run past the busy threshold.
    var busyMessage: String {
        kind == .function
            ? "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
            : "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    }
}

/// Makes transactions and scripts atomic on a node, as Redis' single thread does.
///
/// Every command that touches data holds the gate shared while it runs (on its event loop, or
/// on the disk thread its work moved to); a transaction or script holds it exclusively, so no
/// other command runs in between its commands and no reader sees half of it. Readers count
/// themselves in one of 16 cache-line-padded slots picked by thread, so two event loops never
/// write the same cache line on the hot path; the exclusive side raises `closed`, then waits for
/// every slot to drain (Dekker-style, sequentially consistent).
///
/// An event loop never blocks here: when the gate is closed its command waits for a future
/// (`tryEnter` gives `.wait`), and gets BUSY once a script has run past the busy threshold.
final class AtomicGate: @unchecked Sendable {
    private static let slots = 16
    /// Int-sized atomics between two slots' counters (128 bytes: no false sharing).
    private static let stride = 16

    private let readers: UnsafeMutablePointer<Atomic<Int>>
    private let closed = Atomic<Bool>(false)
    /// Serialises exclusive holders (two EXECs at once run one after the other). A plain
    /// pthread mutex: waiting disk threads sleep rather than spin (Synchronization's Mutex spun
    /// for 16% of the CPU under a transaction load on 2 cores), and event loops can try it.
    private let exclusiveLock: UnsafeMutablePointer<pthread_mutex_t>
    private let state = Mutex<State>(State())

    private struct State {
        var running: AtomicUnit?
        var waiters: [EventLoopPromise<Bool>] = []
    }

    /// How `tryEnter` went.
    enum Entry {
        /// Entered on this slot: call `leave(slot)` when done.
        case entered(Int)
        /// Closed by a unit still under the busy threshold: the future gives true when the gate
        /// opens (try again) and false when the unit passed the threshold (answer `busy`).
        case wait(EventLoopFuture<Bool>, busy: String)
        /// Closed by a script past the busy threshold: answer this BUSY error.
        case busy(String)
    }

    init() {
        readers = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: Self.slots * Self.stride)
        for i in 0..<(Self.slots * Self.stride) { (readers + i).initialize(to: Atomic(0)) }
        exclusiveLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        exclusiveLock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(exclusiveLock, nil)
    }

    deinit {
        pthread_mutex_destroy(exclusiveLock)
        exclusiveLock.deallocate()
        readers.deinitialize(count: Self.slots * Self.stride)
        readers.deallocate()
    }

    /// The unit holding the gate exclusively, if any.
    var running: AtomicUnit? { state.withLock { $0.running } }

    private static func slot() -> Int {
        let id = UInt64(UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))))
        return Int((id &* 0x9E37_79B9_7F4A_7C15) >> 60) * stride
    }

    /// Enters shared without blocking (event loops). `busyAfter`: the busy threshold.
    func tryEnter(on eventLoop: any EventLoop, busyAfter threshold: Duration) -> Entry {
        let slot = Self.slot()
        readers[slot].add(1, ordering: .sequentiallyConsistent)
        if !closed.load(ordering: .sequentiallyConsistent) { return .entered(slot) }
        readers[slot].subtract(1, ordering: .sequentiallyConsistent)
        return state.withLock { s -> Entry in
            guard closed.load(ordering: .sequentiallyConsistent), let unit = s.running else {
                // Opened meanwhile (or between two units): try again at once.
                return .wait(eventLoop.makeSucceededFuture(true), busy: "")
            }
            let elapsed = ContinuousClock.now - unit.startedAt
            if unit.kind != .transaction && elapsed >= threshold { return .busy(unit.busyMessage) }
            let promise = eventLoop.makePromise(of: Bool.self)
            s.waiters.append(promise)
            // One timer per unit (not per waiter: thousands of timers filled the event loops'
            // task heaps under a script load): at the threshold it answers every waiter BUSY.
            if unit.kind != .transaction && !unit.busyTimerArmed.exchange(true, ordering: .relaxed) {
                eventLoop.scheduleTask(in: .nanoseconds(Int64((threshold - elapsed) / .nanoseconds(1)))) {
                    let expired = self.state.withLock { s -> [EventLoopPromise<Bool>] in
                        guard s.running === unit else { return [] }
                        defer { s.waiters.removeAll() }
                        return s.waiters
                    }
                    for promise in expired { promise.succeed(false) }
                }
            }
            return .wait(promise.futureResult, busy: unit.busyMessage)
        }
    }

    /// Enters shared, waiting while the gate is closed (disk threads only).
    func enter() -> Int {
        let slot = Self.slot()
        var pause: UInt32 = 20
        while true {
            readers[slot].add(1, ordering: .sequentiallyConsistent)
            if !closed.load(ordering: .sequentiallyConsistent) { return slot }
            readers[slot].subtract(1, ordering: .sequentiallyConsistent)
            usleep(pause)
            pause = min(pause * 2, 1000)
        }
    }

    func leave(_ slot: Int) {
        readers[slot].subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Runs `body` with the gate shared (disk threads).
    func shared<R>(_ body: () throws -> R) rethrows -> R {
        let slot = enter()
        defer { leave(slot) }
        return try body()
    }

    /// Runs `body` holding the gate exclusively: no other gated command runs until it returns.
    /// Call from a disk thread, never holding the gate shared.
    func exclusive<R>(_ unit: AtomicUnit, _ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(exclusiveLock)
        defer { pthread_mutex_unlock(exclusiveLock) }
        return try held(unit, body)
    }

    /// `exclusive` if no other unit holds or waits for the gate, else nil at once (an event
    /// loop's fast path: it must not wait behind a long script).
    func tryExclusive<R>(_ unit: AtomicUnit, _ body: () throws -> R) rethrows -> R? {
        guard pthread_mutex_trylock(exclusiveLock) == 0 else { return nil }
        defer { pthread_mutex_unlock(exclusiveLock) }
        return try held(unit, body)
    }

    /// Inside `exclusive`: the next unit of a batch starts (BUSY and SCRIPT KILL see it).
    func switchUnit(to unit: AtomicUnit) {
        state.withLock { $0.running = unit }
    }

    /// Closes the gate, waits for the commands inside to finish, runs `body`, opens the gate.
    private func held<R>(_ unit: AtomicUnit, _ body: () throws -> R) rethrows -> R {
        // `running` first: a reader that sees the gate closed always finds its holder.
        state.withLock { $0.running = unit }
        closed.store(true, ordering: .sequentiallyConsistent)
        for i in 0..<Self.slots {
            // Commands inside take microseconds: yield a while before sleeping.
            var spins = 0
            while readers[i * Self.stride].load(ordering: .sequentiallyConsistent) != 0 {
                spins += 1
                if spins < 200 { sched_yield() } else { usleep(50) }
            }
        }
        defer {
            closed.store(false, ordering: .sequentiallyConsistent)
            let waiting = state.withLock { s in
                s.running = nil
                defer { s.waiters.removeAll() }
                return s.waiters
            }
            for promise in waiting { promise.succeed(true) }
        }
        return try body()
    }
}
