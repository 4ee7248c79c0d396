import NIOCore
import RESP
import StrataStore

/// How a command reached the executor; decides authentication, routing and metrics.
enum CommandOrigin: Sendable, Equatable {
    /// A client's connection: checked for authentication, routed to the keys' owners, counted.
    case client
    /// Another node of the cluster (after STRATA.PEER): runs here, never forwarded again; a write
    /// is still sent on to the key's other owners.
    case peer
    /// A piece of another command that was already checked and counted (a part of a fan-out, or
    /// a forwarded command whose owner turned out to be this node).
    case part
    /// A command of a transaction or script: runs here and now, inside the unit's exclusive hold
    /// of the gate (`CommandExecutor.atomically`); the unit replicates and syncs as a whole.
    case atomic
}

/// Who runs a command and where its reply goes.
struct Caller: Sendable {
    let session: ClientSession
    let eventLoop: any EventLoop
    var origin: CommandOrigin
    var version: RESPVersion
    var authenticated: Bool
    /// Between MULTI and EXEC/DISCARD: commands are queued, not run.
    var inTransaction = false
    /// Subscribed to a channel or pattern: in RESP2 only pub/sub commands, PING, QUIT and RESET.
    var subscribed = false
}

/// Where a command runs in a cluster.
enum Placement: Sendable {
    /// On the keys' owners: here, forwarded, or split across nodes (a client's command).
    case byOwner
    /// Here; `replicate`: then send the written keys to their other owners.
    case here(replicate: Bool)
}

/// What running a command gave.
struct Execution {
    enum Result {
        /// The reply is written into the caller's buffer.
        case written(isError: Bool)
        /// The reply comes later (disk thread, another node, replica acknowledgements, fsync).
        case pending(EventLoopFuture<Reply>)
    }

    var result: Result
    /// QUIT: the connection closes once this reply is out.
    var closeAfterReply = false
}

/// The one place a command runs, whoever sent it (a client, a peer, a fan-out part; later MULTI
/// and scripts), as Redis' `call()` is: lookup, arity, authentication, routing, the handler,
/// metrics, replication to the other owners and the `--fsync always` wait.
struct CommandExecutor: Sendable {
    let server: Server
    private let alwaysSync: Bool

    init(server: Server) {
        self.server = server
        self.alwaysSync = server.store.configuration.fsync == .always
    }

    var commands: CommandTable { server.commands }

    /// Runs `arguments` (name first), writing an immediate reply at the end of `out`. `spec` is
    /// the command's entry if the caller looked it up already (nil: look it up here).
    func execute(
        _ arguments: [ByteBuffer], spec: CommandSpec? = nil, caller: Caller, placement: Placement = .byOwner,
        into out: inout ByteBuffer, retried: Bool = false
    ) -> Execution {
        let counted = caller.origin != .part && !retried
        if counted { server.counters.commandsProcessed.wrappingAdd(1, ordering: .relaxed) }
        guard let nameBuffer = arguments.first, let spec = spec ?? commands.lookup(nameBuffer) else {
            abortTransaction(caller)
            if counted {
                server.metrics.unknown.calls.increment()
                server.metrics.unknown.errors.increment()
            }
            out.writeRESPError(Self.unknownCommandMessage(arguments))
            return Execution(result: .written(isError: true))
        }
        let metrics = counted ? (spec.metrics ?? server.metrics.unknown) : nil
        metrics?.calls.increment()
        // Redis' order: unknown command, then arity, then authentication.
        guard spec.arityMatches(arguments.count) else {
            abortTransaction(caller)
            metrics?.errors.increment()
            out.writeRESPError(CommandError.arity(spec.name).message)
            return Execution(result: .written(isError: true))
        }
        guard caller.authenticated || caller.origin == .part || caller.origin == .atomic || spec.flags.contains(.noAuth) else {
            abortTransaction(caller)
            metrics?.errors.increment()
            out.writeRESPError("NOAUTH Authentication required.")
            return Execution(result: .written(isError: true))
        }
        if caller.subscribed && caller.version == .v2 && caller.origin == .client && !Self.allowedWhileSubscribed.contains(spec.name) {
            abortTransaction(caller)
            metrics?.errors.increment()
            out.writeRESPError(
                "ERR Can't execute '\(spec.name)': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
            return Execution(result: .written(isError: true))
        }
        // CLIENT PAUSE: a client's command waits for the pause to end, then runs as if it had
        // just arrived (CLIENT itself is never held, so CLIENT UNPAUSE can end it).
        if caller.origin == .client && !caller.inTransaction && spec.name != "client",
            let resumed = server.pause.hold(mayWrite: Self.mayWrite(spec), on: caller.eventLoop)
        {
            if !server.monitors.isEmpty { server.monitors.feed(arguments, name: spec.name, from: caller.session) }
            let later = resumed.flatMap { self.again(arguments, spec: spec, caller: caller, placement: placement) }
            return Execution(result: .pending(later))
        }
        if caller.inTransaction && caller.origin == .client && !Self.runsInsideMulti.contains(spec.name) {
            if let refusal = Self.multiRefusal(spec) {
                abortTransaction(caller)
                metrics?.errors.increment()
                out.writeRESPError(refusal)
                return Execution(result: .written(isError: true))
            }
            caller.session.state.withLock { $0.transaction?.commands.append(arguments) }
            out.writeStaticString("+QUEUED\r\n")
            return Execution(result: .written(isError: false))
        }
        // MONITOR sees what runs (queued commands when their EXEC runs them, as in Redis).
        if caller.origin == .client && !retried && !server.monitors.isEmpty {
            server.monitors.feed(arguments, name: spec.name, from: caller.session)
        }
        // Hold the gate shared while this command touches data, so that no transaction or script
        // runs halfway through it; while one runs, wait for it (or answer BUSY).
        var slot: Int? = nil
        if caller.origin != .atomic && !spec.flags.contains(.admin) && !spec.flags.contains(.noAuth) {
            switch server.gate.tryEnter(on: caller.eventLoop, busyAfter: server.busyThreshold) {
            case .entered(let entered):
                slot = entered
            case .busy(let message):
                metrics?.errors.increment()
                out.writeRESPError(message)
                return Execution(result: .written(isError: true))
            case .wait(let opened, let busy):
                let later = opened.flatMap { open -> EventLoopFuture<Reply> in
                    guard open else { return caller.eventLoop.makeSucceededFuture(.error(busy)) }
                    return self.again(arguments, spec: spec, caller: caller, placement: placement)
                }
                return Execution(result: .pending(later))
            }
        }
        defer { if let slot { server.gate.leave(slot) } }
        let start = ContinuousClock.now
        let isWrite = spec.flags.contains(.write)
        let atomic = caller.origin == .atomic
        var replicate = false
        if spec.routes, !atomic, server.cluster?.isClustered == true {
            switch (caller.origin, placement) {
            case (.peer, _):
                replicate = isWrite
            case (_, .here(let andReplicate)):
                replicate = andReplicate && isWrite
            case (_, .byOwner):
                switch route(arguments, spec: spec, caller: caller) {
                case .local(let andReplicate):
                    replicate = andReplicate
                case .remote(let future):
                    return Execution(result: .pending(measured(future, metrics, start, caller.eventLoop)))
                }
            }
        }

        let mark = out.writerIndex
        var invocation = Invocation(
            arguments: arguments, name: spec.name, session: caller.session, server: server, eventLoop: caller.eventLoop,
            version: caller.version, origin: caller.origin, out: out)
        out = ByteBuffer()  // `invocation` owns the buffer while the handler runs (no copy on write)
        var outcome: Outcome
        var failed = false
        do {
            outcome = try spec.handler(&invocation)
        } catch {
            invocation.out.moveWriterIndex(to: mark)
            invocation.out.writeRESPError(Server.replyText(for: error))
            outcome = .done
            failed = true
        }
        out = invocation.out
        let closeAfterReply = invocation.closeAfterReply
        let loop = caller.eventLoop
        let replicates = replicate

        // A write that runs here goes on to the keys' other owners; with a write quorum above 1
        // its reply waits for their acknowledgements, and under `--fsync always` for the sync.
        let waits = !failed && !atomic && isWrite && ((replicate && (server.cluster?.configuration.writeQuorum ?? 1) > 1) || alwaysSync)
        switch outcome {
        case .done where !waits:
            // The common case: answered here and now.
            if isWrite && !failed { wakeBlocked(spec, arguments) }
            if replicate && !failed { _ = replicateWrites(spec.keys(in: arguments).map { Array($0.readableBytesView) }, caller: caller) }
            if let metrics {
                if failed { metrics.errors.increment() }
                let elapsed = ContinuousClock.now - start
                metrics.duration.record(elapsed)
                logIfSlow(elapsed, spec, arguments, caller)
            }
            return Execution(result: .written(isError: failed), closeAfterReply: closeAfterReply)
        case .done:
            if isWrite && !failed { wakeBlocked(spec, arguments) }
            let reply = Reply(out.getSlice(at: mark, length: out.writerIndex - mark)!)
            out.moveWriterIndex(to: mark)
            let settled = settle(reply, spec: spec, arguments: arguments, replicate: replicate, caller: caller)
            return Execution(
                result: .pending(measured(settled, metrics, start, loop, slow: (spec, arguments, caller))), closeAfterReply: closeAfterReply)
        case .deferred(let future):
            if isWrite {
                future.whenSuccess { reply in if !reply.isError { self.wakeBlocked(spec, arguments) } }
            }
            let settled: EventLoopFuture<Reply> =
                replicate || (isWrite && alwaysSync && !atomic)
                ? future.flatMap { reply in
                    reply.isError ? loop.makeSucceededFuture(reply)
                        : self.settle(reply, spec: spec, arguments: arguments, replicate: replicates, caller: caller)
                } : future
            return Execution(
                result: .pending(measured(settled, metrics, start, loop, slow: (spec, arguments, caller))), closeAfterReply: closeAfterReply)
        }
    }

    /// Whether CLIENT PAUSE WRITE holds a command: writes, and what may write or publish
    /// (Redis' may-replicate commands: transactions, scripts, PUBLISH).
    static func mayWrite(_ spec: CommandSpec) -> Bool {
        spec.flags.contains(.write) || mayWriteNames.contains(spec.name)
    }

    static let mayWriteNames: Set<String> = [
        "exec", "eval", "evalsha", "fcall", "publish", "spublish", "function", "script",
    ]

    /// Runs a command that waited (for the gate, or for CLIENT PAUSE) as if it had just arrived,
    /// without counting it again; its reply as a future.
    private func again(_ arguments: [ByteBuffer], spec: CommandSpec, caller: Caller, placement: Placement) -> EventLoopFuture<Reply> {
        var out = ByteBuffer()
        let execution = execute(arguments, spec: spec, caller: caller, placement: placement, into: &out, retried: true)
        switch execution.result {
        case .written(let isError): return caller.eventLoop.makeSucceededFuture(Reply(out, isError: isError))
        case .pending(let future): return future
        }
    }

    /// What a RESP2 connection with subscriptions may still send (Redis' list).
    static let allowedWhileSubscribed: Set<String> = [
        "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "ping", "quit", "reset",
    ]

    /// Commands a client in MULTI runs at once rather than queueing (Redis' list).
    static let runsInsideMulti: Set<String> = ["exec", "discard", "multi", "watch", "quit", "reset"]

    /// Why a command cannot be queued in MULTI, if it cannot (Redis' texts).
    static func multiRefusal(_ spec: CommandSpec) -> String? {
        spec.flags.contains(.noMulti) ? "ERR Command not allowed inside a transaction" : nil
    }

    /// A refused command inside MULTI makes the EXEC answer EXECABORT (Redis' `flagTransaction`).
    private func abortTransaction(_ caller: Caller) {
        guard caller.inTransaction, caller.origin == .client else { return }
        caller.session.state.withLock { $0.transaction?.aborted = true }
    }

    /// A write changed its keys: clients blocked on them (BLPOP...) try again.
    func wakeBlocked(_ spec: CommandSpec, _ arguments: [ByteBuffer]) {
        guard server.blocked.hasWaiters else { return }
        server.blocked.signal(spec.keys(in: arguments).map { Array($0.readableBytesView) })
    }

    /// Runs `arguments` as a piece of another command and gives its reply as a future.
    func run(_ arguments: [ByteBuffer], caller: Caller, placement: Placement) -> EventLoopFuture<Reply> {
        var part = caller
        part.origin = .part
        var out = ByteBuffer()
        let execution = execute(arguments, caller: part, placement: placement, into: &out)
        switch execution.result {
        case .written(let isError): return caller.eventLoop.makeSucceededFuture(Reply(out, isError: isError))
        case .pending(let future): return future
        }
    }

    /// Sends a successful write's keys to their other owners (if `replicate`) and completes with
    /// `reply` once the write quorum has them and, under `--fsync always`, its commit is synced.
    private func settle(
        _ reply: Reply, spec: CommandSpec, arguments: [ByteBuffer], replicate: Bool, caller: Caller
    ) -> EventLoopFuture<Reply> {
        let loop = caller.eventLoop
        var settled = loop.makeSucceededFuture(reply)
        if replicate {
            let keys = spec.keys(in: arguments).map { Array($0.readableBytesView) }
            if let cluster = server.cluster, case let replicated = replicateWrites(keys, caller: caller), cluster.configuration.writeQuorum > 1 {
                settled = replicated.map { reply }.recover { Reply.error(for: $0) }
            }
        }
        if spec.flags.contains(.write) && alwaysSync {
            let store = server.store
            settled = settled.flatMap { reply in
                reply.isError ? loop.makeSucceededFuture(reply) : Self.durable(reply, store: store, on: loop)
            }
        }
        return settled
    }

    /// `future` with failures turned into error replies, and the command's latency and error
    /// recorded when it completes.
    private func measured(
        _ future: EventLoopFuture<Reply>, _ metrics: CommandMetrics?, _ start: ContinuousClock.Instant, _ loop: any EventLoop,
        slow: (spec: CommandSpec, arguments: [ByteBuffer], caller: Caller)? = nil
    ) -> EventLoopFuture<Reply> {
        let replies = future.recover { Reply.error(for: $0) }
        guard let metrics else { return replies }
        return replies.map { reply in
            if reply.isError { metrics.errors.increment() }
            let elapsed = ContinuousClock.now - start
            metrics.duration.record(elapsed)
            if let slow { self.logIfSlow(elapsed, slow.spec, slow.arguments, slow.caller) }
            return reply
        }
    }

    /// Puts a top-level command that took `elapsed` in SLOWLOG if it was slow enough. AUTH and
    /// HELLO are never logged (their arguments hold passwords).
    private func logIfSlow(_ elapsed: Duration, _ spec: CommandSpec, _ arguments: [ByteBuffer], _ caller: Caller) {
        let (seconds, attoseconds) = elapsed.components
        let microseconds = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        guard server.slowLog.isSlow(microseconds), !["auth", "hello"].contains(spec.name) else { return }
        var logged = arguments.map { Array($0.readableBytesView) }
        // CONFIG SET requirepass: the password is redacted, as Redis does.
        if spec.name == "config", logged.count >= 4 {
            for i in stride(from: 2, to: logged.count - 1, by: 2)
            where String(decoding: logged[i], as: UTF8.self).lowercased() == "requirepass" {
                logged[i + 1] = Array("(redacted)".utf8)
            }
        }
        let name = caller.session.state.withLock { $0.name }
        server.slowLog.record(
            logged, microseconds: microseconds, clientAddress: caller.session.address, clientName: name,
            now: currentTimeMilliseconds())
    }

    /// A future of `reply` that completes once every write so far is synced.
    private static func durable(_ reply: Reply, store: TieredStore, on eventLoop: any EventLoop) -> EventLoopFuture<Reply> {
        let promise = eventLoop.makePromise(of: Reply.self)
        store.whenDurable(store.writeTicket) { error in
            if let error {
                promise.succeed(.error("ERR write not persisted: \(error.message)"))
            } else {
                promise.succeed(reply)
            }
        }
        return promise.futureResult
    }

    /// Redis' exact text: arguments are echoed until 128 bytes of them have been shown.
    static func unknownCommandMessage(_ arguments: [ByteBuffer]) -> String {
        let name = arguments.first.map { String(decoding: $0.readableBytesView.prefix(128), as: UTF8.self) } ?? ""
        var args: [UInt8] = []
        for argument in arguments.dropFirst() where args.count < 128 {
            args += Array("'".utf8) + Array(argument.readableBytesView.prefix(128 - args.count)) + Array("' ".utf8)
        }
        return "ERR unknown command '\(name)', with args beginning with: \(String(decoding: args, as: UTF8.self))"
    }
}
