import NIOCore
import StrataStore
import Synchronization

/// CLIENT PAUSE: until a deadline, clients' commands (all of them, or only those that may write)
/// wait instead of running; CLIENT UNPAUSE or the deadline lets them go, in the order they came.
/// Peers are never paused, so replication and the cluster's own traffic carry on.
final class ClientPause: Sendable {
    enum Mode: Sendable {
        case all, write
    }

    private struct State {
        var until: Int64 = 0
        var mode = Mode.write
        var waiting: [EventLoopPromise<Void>] = []
    }

    private let state = Mutex(State())
    /// Whether a pause may be in force: the hot path reads only this.
    private let active = Atomic<Bool>(false)

    /// Pauses until `deadline` (ms since the epoch). A pause in force is extended, never cut
    /// short, and ALL wins over WRITE while both would be in force, as in Redis.
    func pause(until deadline: Int64, mode: Mode, timerLoop: any EventLoop) {
        let now = currentTimeMilliseconds()
        state.withLock { s in
            let inForce = s.until > now
            s.mode = inForce && (s.mode == .all || mode == .all) ? .all : mode
            s.until = inForce ? max(s.until, deadline) : deadline
        }
        active.store(true, ordering: .relaxed)
        let delay = max(0, deadline - now)
        timerLoop.scheduleTask(in: .milliseconds(delay)) { [self] in expireIfDue() }
    }

    /// CLIENT UNPAUSE: every waiting command runs now.
    func unpause() {
        let released = state.withLock { s -> [EventLoopPromise<Void>] in
            s.until = 0
            defer { s.waiting = [] }
            return s.waiting
        }
        active.store(false, ordering: .relaxed)
        for promise in released { promise.succeed() }
    }

    /// Nil if a command may run now; otherwise a future that completes when the pause ends.
    func hold(mayWrite: Bool, on eventLoop: any EventLoop) -> EventLoopFuture<Void>? {
        guard active.load(ordering: .relaxed) else { return nil }
        let now = currentTimeMilliseconds()
        return state.withLock { s -> EventLoopFuture<Void>? in
            guard s.until > now, s.mode == .all || mayWrite else { return nil }
            let promise = eventLoop.makePromise(of: Void.self)
            s.waiting.append(promise)
            return promise.futureResult
        }
    }

    private func expireIfDue() {
        let due = state.withLock { s in s.until <= currentTimeMilliseconds() }
        if due { unpause() }
    }
}
