import NIOCore
import RESP
import StrataStore

/// Atomic execution: MULTI/EXEC and scripts run their commands as one unit on a node.
///
/// `atomically` moves the unit to a disk thread, loads its keys into the memory tier (holding the
/// gate shared, so other commands carry on meanwhile), then takes the node's `AtomicGate`
/// exclusively and runs the body, which runs commands synchronously through an `AtomicSession`.
/// No other command that touches data runs until the body returns, so no client sees part of
/// the unit. Afterwards the keys it wrote go to their other owners as one batch, and the
/// caller's spec (EXEC, EVAL... are writes) makes the reply wait for `--fsync always`.
extension CommandExecutor {
    /// Runs `body` as one atomic unit of kind `kind`; `keys` are loaded into memory first.
    ///
    /// A unit whose keys are all in the memory tier runs right here on the event loop when no
    /// other unit holds the gate (no thread hop: EVALSHA of a one-SET script ran at 0.4x Redis
    /// through a thread). A script that runs there past about 10,000 Lua instructions without
    /// having written is stopped and runs again from the start on the `AtomicRunner`'s thread,
    /// so a long script (the kind SCRIPT KILL is for) does not hold an event loop whose clients
    /// may need to send SCRIPT KILL. Everything else runs on the runner, after its keys are
    /// loaded on the disk pool if some are only on disk.
    func atomically(
        keys: [[UInt8]], kind: AtomicUnit.Kind, caller: Caller,
        _ body: @escaping @Sendable (AtomicSession) throws -> AtomicResult
    ) -> AtomicOutcome {
        let (store, gate, loop) = (server.store, server.gate, caller.eventLoop)
        // While another unit runs: wait for it, or answer BUSY once a script passed the
        // threshold, as any other command would (EXEC, EVAL and FCALL do not hold the gate).
        switch gate.tryEnter(on: loop, busyAfter: server.busyThreshold) {
        case .entered(let slot):
            gate.leave(slot)
        case .busy(let message):
            return .now(.error(message))
        case .wait(let opened, let busy):
            return .deferred(
                opened.flatMap { open -> EventLoopFuture<Reply> in
                    guard open else { return loop.makeSucceededFuture(.error(busy)) }
                    switch self.atomically(keys: keys, kind: kind, caller: caller, body) {
                    case .now(let reply): return loop.makeSucceededFuture(reply)
                    case .deferred(let future): return future
                    }
                })
        }
        var inside = caller
        inside.origin = .atomic
        inside.inTransaction = false
        let unitCaller = inside
        @Sendable func run(_ unit: AtomicUnit, onEventLoop: Bool = false) -> (AtomicResult, [[UInt8]]) {
            let session = AtomicSession(executor: self, caller: unitCaller, unit: unit, onEventLoop: onEventLoop)
            do {
                return (try body(session), session.writtenKeys)
            } catch {
                return (.reply(Reply.error(for: error)), session.writtenKeys)
            }
        }
        // No disk read to wait for: every key in memory, or the disk tier in the page cache (a
        // read there costs about a microsecond, as GET's path knows).
        let inMemory = store.diskReadsAreResident || keys.allSatisfy { key in key.withUnsafeBytes { store.isInMemory($0) } }
        if inMemory {
            let unit = AtomicUnit(kind: kind)
            if let done = gate.tryExclusive(unit, { run(unit, onEventLoop: true) }), !done.0.isPreempted {
                // Answered now when nothing is left to wait for: the reply goes out with the
                // others of the same read, in one write.
                let quorumWait = server.cluster.map { $0.isClustered && $0.configuration.writeQuorum > 1 } ?? false
                if !quorumWait, let reply = done.0.immediate {
                    if !done.1.isEmpty, server.cluster?.isClustered == true { _ = replicateWrites(done.1, caller: caller) }
                    if !done.1.isEmpty { server.blocked.signal(done.1) }
                    return .now(reply)
                }
                return .deferred(finish(done.0, written: done.1, caller: caller))
            }
        }
        let promise = loop.makePromise(of: (AtomicResult, [[UInt8]]).self)
        let job = AtomicRunner.Job(kind: kind) { unit in promise.succeed(run(unit)) }
        if inMemory {
            server.atomicRunner.submit(job)
        } else {
            // Disk reads happen on the disk pool, outside the exclusive hold.
            let runner = server.atomicRunner
            server.diskPool.runIfActive(eventLoop: loop) {
                gate.shared {
                    for key in keys { _ = store.entry(key) }
                }
            }.whenComplete { _ in runner.submit(job) }
        }
        return .deferred(promise.futureResult.flatMap { result, written in self.finish(result, written: written, caller: caller) })
    }

    /// Replicates what a unit wrote and gives its reply.
    private func finish(_ result: AtomicResult, written: [[UInt8]], caller: Caller) -> EventLoopFuture<Reply> {
        let loop = caller.eventLoop
        var replicated = loop.makeSucceededVoidFuture()
        if !written.isEmpty { server.blocked.signal(written) }
        if !written.isEmpty, let cluster = server.cluster, cluster.isClustered {
            let sent = replicateWrites(written, caller: caller)
            if cluster.configuration.writeQuorum > 1 { replicated = sent }
        }
        return replicated.flatMap { result.reply(on: loop) }.recover { Reply.error(for: $0) }
    }
}

/// How an atomic unit's reply comes.
enum AtomicOutcome {
    /// Answered (a transaction run on the event loop).
    case now(Reply)
    /// Later: from a disk thread, or after replication acknowledgements.
    case deferred(EventLoopFuture<Reply>)
}

/// What an atomic unit answers: a finished reply, or (EXEC with a cluster-wide command inside)
/// replies of which some complete after the unit.
enum AtomicResult: Sendable {
    case reply(Reply)
    /// An array of these replies, in order (EXEC's reply).
    case array([AtomicSession.Answer], version: RESPVersion)
    /// EXEC aborted by a WATCHed key: a null array.
    case nullArray(RESPVersion)
    /// A script stopped before any write, to run again on the `AtomicRunner` (it ran on an
    /// event loop, where it may not stay long).
    case preempted

    var isPreempted: Bool {
        if case .preempted = self { return true }
        return false
    }

    /// The reply, if every part of it is known now.
    var immediate: Reply? {
        switch self {
        case .preempted:
            return nil
        case .reply(let reply):
            return reply
        case .nullArray(let version):
            var out = ByteBuffer()
            if version == .v3 { out.writeStaticString("_\r\n") } else { out.writeStaticString("*-1\r\n") }
            return Reply(out)
        case .array(let answers, _):
            var out = ByteBuffer()
            out.writeRESPArrayHeader(answers.count)
            for answer in answers {
                guard case .now(let reply) = answer else { return nil }
                out.writeImmutableBuffer(reply.bytes)
            }
            return Reply(out)
        }
    }

    func reply(on loop: any EventLoop) -> EventLoopFuture<Reply> {
        if let reply = immediate { return loop.makeSucceededFuture(reply) }
        guard case .array(let answers, _) = self else {
            return loop.makeSucceededFuture(.error("ERR script preempted"))  // never answered: run again first
        }
        let replies = answers.map { answer -> EventLoopFuture<Reply> in
            switch answer {
            case .now(let reply): return loop.makeSucceededFuture(reply)
            case .later(let future): return future.recover { Reply.error(for: $0) }
            }
        }
        return EventLoopFuture.whenAllSucceed(replies, on: loop).map { replies in
            var out = ByteBuffer()
            out.writeRESPArrayHeader(replies.count)
            for reply in replies { out.writeImmutableBuffer(reply.bytes) }
            return Reply(out)
        }
    }

}

/// The commands of one atomic unit, run one by one on the unit's disk thread.
final class AtomicSession: @unchecked Sendable {
    /// A command's reply inside the unit.
    enum Answer: Sendable {
        case now(Reply)
        /// A command whose reply comes from other nodes (DBSIZE, KEYS... in a cluster).
        case later(EventLoopFuture<Reply>)
    }

    let executor: CommandExecutor
    let caller: Caller
    let unit: AtomicUnit
    /// Running on the event loop the unit came from (not the `AtomicRunner`): a script must
    /// stop early (preempted) rather than stay long, unless it wrote.
    let onEventLoop: Bool
    /// The keys written so far, to replicate once the unit is done.
    private(set) var writtenKeys: [[UInt8]] = []

    init(executor: CommandExecutor, caller: Caller, unit: AtomicUnit, onEventLoop: Bool) {
        self.executor = executor
        self.caller = caller
        self.unit = unit
        self.onEventLoop = onEventLoop
    }

    var store: TieredStore { executor.server.store }

    /// The command named by `name`, if the node has it.
    func spec(_ name: ByteBuffer) -> CommandSpec? { executor.commands.lookup(name) }

    /// Runs one command now, with replies in `version`.
    func call(_ arguments: [ByteBuffer], version: RESPVersion) -> Answer {
        var caller = self.caller
        caller.version = version
        let spec = arguments.first.flatMap { executor.commands.lookup($0) }
        var out = ByteBuffer()
        let execution = executor.execute(arguments, spec: spec, caller: caller, placement: .here(replicate: false), into: &out)
        if let spec, !executor.server.monitors.isEmpty {
            // As Redis shows them: a script's calls come from "lua", a transaction's from its client.
            executor.server.monitors.feed(
                arguments, name: spec.name, from: caller.session, address: unit.kind == .transaction ? nil : "lua")
        }
        if let spec, spec.flags.contains(.write) {
            unit.wrote.store(true, ordering: .relaxed)
            writtenKeys += spec.keys(in: arguments).map { Array($0.readableBytesView) }
        }
        switch execution.result {
        case .written(let isError): return .now(Reply(out, isError: isError))
        case .pending(let future): return .later(future)
        }
    }

    /// Runs one command now and gives its reply; one that would complete on other nodes gets an
    /// error (a script cannot wait for the cluster inside its atomic run).
    func callNow(_ arguments: [ByteBuffer], version: RESPVersion) -> Reply {
        switch call(arguments, version: version) {
        case .now(let reply): return reply
        case .later: return .error("ERR this command needs other nodes of the cluster and cannot run inside a script")
        }
    }

    /// Whether every watched key still has the stamp WATCH saw.
    func watchesHold(_ watched: [(key: [UInt8], stamp: String)]) -> Bool {
        watched.allSatisfy { store.stamp($0.key).text == $0.stamp }
    }
}
