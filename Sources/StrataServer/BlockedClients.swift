import DequeModule
import NIOCore
import NIOPosix
import Synchronization

/// Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN...), served in arrival order after writes
/// to those keys, as Redis does.
///
/// A waiter's `attempt` tries its pop under the keys' locks and reports whether it served. Writes
/// call `signal` with the keys they changed; one drain at a time then tries the waiters of those
/// keys, oldest first, on the disk thread pool (an attempt may read the disk). Each waiter runs at
/// most one attempt at a time and answers exactly once: served, timed out, or cancelled when its
/// connection closes.
final class BlockedClients: Sendable {
    final class Waiter: Sendable {
        let id: UInt64
        let session: UInt64
        let keys: [[UInt8]]
        let promise: EventLoopPromise<Reply>
        /// Tries the pop; writes the reply into the buffer and returns true if it served.
        let attempt: @Sendable (inout ByteBuffer) throws -> Bool
        let onTimeout: @Sendable () -> Reply
        /// Held while an attempt runs; `done` once the waiter has answered.
        let running = Mutex<(done: Bool, timer: Scheduled<Void>?)>((false, nil))

        init(
            id: UInt64, session: UInt64, keys: [[UInt8]], promise: EventLoopPromise<Reply>,
            attempt: @escaping @Sendable (inout ByteBuffer) throws -> Bool, onTimeout: @escaping @Sendable () -> Reply
        ) {
            (self.id, self.session, self.keys, self.promise) = (id, session, keys, promise)
            (self.attempt, self.onTimeout) = (attempt, onTimeout)
        }

        /// Runs an attempt unless the waiter has answered; returns whether it is done now.
        func tryServe() -> Bool {
            running.withLock { state in
                if state.done { return true }
                var out = ByteBuffer()
                let reply: Reply
                do {
                    guard try attempt(&out) else { return false }
                    reply = Reply(out)
                } catch {
                    reply = Reply.error(for: error)
                }
                finish(&state, reply)
                return true
            }
        }

        /// Answers with `reply` unless the waiter has answered already.
        func answer(_ reply: @autoclosure () -> Reply) {
            running.withLock { state in
                if !state.done { finish(&state, reply()) }
            }
        }

        private func finish(_ state: inout (done: Bool, timer: Scheduled<Void>?), _ reply: Reply) {
            state.done = true
            state.timer?.cancel()
            state.timer = nil
            promise.succeed(reply)
        }
    }

    private struct State {
        var nextID: UInt64 = 1
        var waiters: [UInt64: Waiter] = [:]
        /// Waiter ids per key, oldest first.
        var byKey: [[UInt8]: Deque<UInt64>] = [:]
        /// Keys written since the drain last looked.
        var signalled: Set<[UInt8]> = []
        var draining = false
    }

    private let state = Mutex(State())
    /// Waiters registered now: writes skip `signal` entirely while it is 0.
    private let count = Atomic<Int>(0)
    private let pool: NIOThreadPool

    init(pool: NIOThreadPool) {
        self.pool = pool
    }

    var hasWaiters: Bool { count.load(ordering: .relaxed) > 0 }

    /// Clients blocked now (INFO's `blocked_clients`).
    var waiting: Int { count.load(ordering: .relaxed) }

    /// Registers a waiter on `keys`. Returns it and whether another waiter was already blocked on
    /// one of the keys (then the newcomer must not pop before it: the drain serves both in order).
    func register(
        keys: [[UInt8]], session: UInt64, eventLoop: any EventLoop, timeout: Double,
        attempt: @escaping @Sendable (inout ByteBuffer) throws -> Bool, onTimeout: @escaping @Sendable () -> Reply
    ) -> (waiter: Waiter, queuedBehindOthers: Bool) {
        let promise = eventLoop.makePromise(of: Reply.self)
        let (waiter, behind) = state.withLock { s -> (Waiter, Bool) in
            let waiter = Waiter(id: s.nextID, session: session, keys: keys, promise: promise, attempt: attempt, onTimeout: onTimeout)
            s.nextID += 1
            s.waiters[waiter.id] = waiter
            var behind = false
            for key in Set(keys) {
                behind = behind || !(s.byKey[key]?.isEmpty ?? true)
                s.byKey[key, default: []].append(waiter.id)
            }
            return (waiter, behind)
        }
        count.wrappingAdd(1, ordering: .relaxed)
        promise.futureResult.whenComplete { [self] _ in remove(waiter) }
        if timeout > 0 {
            let nanoseconds = min(timeout * 1e9, Double(Int64.max / 2))
            let timer = eventLoop.scheduleTask(in: .nanoseconds(Int64(nanoseconds))) { waiter.answer(waiter.onTimeout()) }
            waiter.running.withLock { state in
                if state.done { timer.cancel() } else { state.timer = timer }
            }
        }
        return (waiter, behind)
    }

    /// Keys changed by a write: their waiters get another attempt, in arrival order.
    func signal(_ keys: [[UInt8]]) {
        guard hasWaiters else { return }
        let start = state.withLock { s -> Bool in
            for key in keys where s.byKey[key] != nil { s.signalled.insert(key) }
            guard !s.signalled.isEmpty, !s.draining else { return false }
            s.draining = true
            return true
        }
        if start { pool.submit { [self] _ in drain() } }
    }

    /// Answers every waiter of a closed connection with nothing (its reply has nowhere to go),
    /// so no later write pops an element into it.
    func cancel(session: UInt64) {
        guard hasWaiters else { return }
        let gone = state.withLock { s in s.waiters.values.filter { $0.session == session } }
        for waiter in gone { waiter.answer(Reply.error(for: CommandError("ERR connection closed"))) }
    }

    /// Whether the session waits in a blocking pop now.
    func isBlocked(session: UInt64) -> Bool {
        guard hasWaiters else { return false }
        return state.withLock { s in s.waiters.values.contains { $0.session == session } }
    }

    /// CLIENT UNBLOCK: answers the session's waiter as its timeout would, or with Redis'
    /// UNBLOCKED error. Returns whether the session was blocked.
    func unblock(session: UInt64, asError: Bool) -> Bool {
        guard hasWaiters else { return false }
        let waiting = state.withLock { s in s.waiters.values.filter { $0.session == session } }
        for waiter in waiting {
            if asError {
                waiter.answer(Reply.error(for: CommandError("UNBLOCKED client unblocked via CLIENT UNBLOCK")))
            } else {
                waiter.answer(waiter.onTimeout())
            }
        }
        return !waiting.isEmpty
    }

    private func drain() {
        while true {
            let batch = state.withLock { s -> [Waiter] in
                let keys = s.signalled
                s.signalled = []
                var ids = Set<UInt64>()
                for key in keys { ids.formUnion(s.byKey[key] ?? []) }
                if ids.isEmpty { s.draining = false }
                return ids.sorted().compactMap { s.waiters[$0] }
            }
            if batch.isEmpty { return }
            for waiter in batch { _ = waiter.tryServe() }
        }
    }

    private func remove(_ waiter: Waiter) {
        let removed = state.withLock { s -> Bool in
            guard s.waiters.removeValue(forKey: waiter.id) != nil else { return false }
            for key in Set(waiter.keys) {
                s.byKey[key]?.removeAll { $0 == waiter.id }
                if s.byKey[key]?.isEmpty == true { s.byKey[key] = nil }
            }
            return true
        }
        if removed { count.wrappingAdd(-1, ordering: .relaxed) }
    }
}
