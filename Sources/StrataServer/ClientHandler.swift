import Logging
import NIOCore
import RESP
import StrataStore

/// One client connection: NIO's side of it. It reads and parses commands, runs them through the
/// server's `CommandExecutor`, and writes their replies; `ConnectionStateMachine` decides when a
/// command may run, the order of replies, backpressure and closing.
///
/// Commands that only touch the memory tier run right here on the event loop and write their
/// replies straight into `out`, which is written once per read batch. When the client stops
/// reading and the channel's outbound buffer passes its high-water mark, the handler stops
/// running commands and reading the socket, so a client that pipelines without reading cannot
/// grow the node's memory.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    // The mutable state below is touched only on the channel's event loop, one call at a time:
    // the runtime exclusivity checks on it (several per command) are skipped.
    private let server: Server
    private let executor: CommandExecutor
    @exclusivity(unchecked) private var session: ClientSession?
    @exclusivity(unchecked) private var machine: ConnectionStateMachine
    @exclusivity(unchecked) private var out = ByteBuffer()
    /// Bytes received and not yet run as commands. Commands are parsed from here only when they
    /// can run, so a waiting connection holds bytes, not parsed commands. (Parsing here rather
    /// than in a `ByteToMessageHandler` also saves a pipeline hop and a type cast per command.)
    @exclusivity(unchecked) private var input = ByteBuffer()
    @exclusivity(unchecked) private var parser: RESPCommandParser
    private let maxBuffered: Int
    /// When the last bytes arrived (ms since the epoch), and what was last published to the session.
    @exclusivity(unchecked) private var readTime: Int64 = 0
    @exclusivity(unchecked) private var publishedCommand = ""
    @exclusivity(unchecked) private var publishedTime: Int64 = 0
    /// The session's protocol and authentication, read here without its lock; only connection
    /// commands (flag `.admin`) change them, and the cache is refreshed after each.
    @exclusivity(unchecked) private var caller: Caller?
    /// CLIENT REPLY's mode, cached like `caller`.
    @exclusivity(unchecked) private var replyMode = ClientSession.ReplyMode.on
    /// The handler's context, for pub/sub messages that arrive between reads.
    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    /// Since when a subscriber's unread output has been past the soft limit (nil: it is not).
    @exclusivity(unchecked) private var overSoftLimitSince: Int64?

    /// Replies are written out when this much has collected, even mid-batch.
    private static let flushThreshold = 64 << 10
    /// How long a write waits before it is tried again while the disk tier's queue is full.
    private static let backpressurePause = TimeAmount.milliseconds(2)

    init(server: Server, maxOutstanding: Int = 4096) {
        self.server = server
        self.executor = server.executor
        self.machine = ConnectionStateMachine(maxOutstanding: maxOutstanding)
        self.parser = RESPCommandParser(limits: RESPDecoderLimits(maxBulkLength: min(server.settings.protoMaxBulkLength, server.settings.queryBufferLimit)))
        self.maxBuffered = server.settings.protoMaxBulkLength + (1 << 20)
    }

    // MARK: Lifecycle

    func channelActive(context: ChannelHandlerContext) {
        out = context.channel.allocator.buffer(capacity: 4096)
        server.counters.connectionsReceived.wrappingAdd(1, ordering: .relaxed)
        let id = server.nextClientID.wrappingAdd(1, ordering: .relaxed).oldValue
        let session = ClientSession(
            id: id,
            address: context.channel.remoteAddress.map(Self.describe) ?? "?",
            localAddress: context.channel.localAddress.map(Self.describe) ?? "?",
            authenticated: server.configuration.requirePass == nil)
        let accepted = server.clients.withLock { clients -> Bool in
            guard clients.count < server.configuration.maxClients else { return false }
            clients[id] = session
            return true
        }
        guard accepted else {
            server.counters.connectionsRejected.wrappingAdd(1, ordering: .relaxed)
            machine.close()
            var reply = context.channel.allocator.buffer(capacity: 64)
            reply.writeRESPError("ERR max number of clients reached")
            countOut(reply.readableBytes)
            context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        self.session = session
        let channel = context.channel
        session.closer.withLock { $0 = { channel.close(promise: nil) } }
        self.context = context
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        session.pusher.withLock { $0 = { message in loop.execute { handler.value.push(message) } } }
        caller = Caller(session: session, eventLoop: context.eventLoop, origin: .client, version: .v2, authenticated: false)
        refreshCaller()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let session {
            _ = server.clients.withLock { $0.removeValue(forKey: session.id) }
            server.blocked.cancel(session: session.id)
            server.pubsub.removeAll(session)
            server.monitors.remove(session)
            session.pusher.withLock { $0 = nil }
        }
        machine.close()
        context.fireChannelInactive()
    }

    static func describe(_ address: SocketAddress) -> String {
        "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
    }

    // MARK: Input

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        readTime = currentTimeMilliseconds()
        server.counters.bytesIn.wrappingAdd(incoming.readableBytes, ordering: .relaxed)
        guard machine.state != .closed, session != nil, machine.protocolError == nil else { return }
        if input.readableBytes == 0 {
            input = incoming
        } else if input.readableBytes < machine.readAheadLimit {
            // A partial command is left over. Appending in place would copy the whole storage it
            // shares with the arguments of commands still running (copy on write), so join
            // just the two readable parts in a new buffer.
            var joined = context.channel.allocator.buffer(capacity: input.readableBytes + incoming.readableBytes)
            joined.writeBuffer(&input)
            joined.writeBuffer(&incoming)
            input = joined
        } else {
            input.writeBuffer(&incoming)  // a large value arriving in pieces: grow in place
        }
        if input.readableBytes > maxBuffered {
            // No command may be larger than the biggest value plus room for its key and header.
            protocolError("ERR Protocol error: request too large", context: context)
            return
        }
        process(context: context)
    }

    private func protocolError(_ message: String, context: ChannelHandlerContext) {
        server.metrics.protocolErrors.increment()
        server.logger.debug("protocol error; closing the connection", metadata: ["error": "\(message)"])
        machine.protocolErrorSeen(message)
        input = ByteBuffer()
        process(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushReplies(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Malformed requests are found by the parser in `process`; what arrives here is an I/O
        // error (connection reset and the like), with no one to answer.
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            machine.quiesce()
            process(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Backpressure

    func read(context: ChannelHandlerContext) {
        if machine.shouldRead(writable: context.channel.isWritable, buffered: input.readableBytes) {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            process(context: context)
            flushReplies(context: context)
            resumeReading(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func resumeReading(context: ChannelHandlerContext) {
        if machine.shouldResumeReading(writable: context.channel.isWritable) { context.read() }
    }

    // MARK: Execution

    /// Runs every command that may run now, then settles the connection.
    private func process(context: ChannelHandlerContext) {
        loop: while context.channel.isWritable {
            let command: RESPCommand
            switch machine.next() {
            case .wait:
                break loop
            case .held(let held):
                command = held
            case .parse:
                do {
                    guard let parsed = try parser.next(&input) else { break loop }
                    command = parsed
                } catch {
                    server.metrics.protocolErrors.increment()
                    machine.protocolErrorSeen(error.message)
                    input = ByteBuffer()
                    continue loop
                }
            }
            let spec = command.arguments.first.flatMap { server.commands.lookup($0) }
            let kind = Self.kind(of: spec)
            switch machine.admit(command, kind: kind, writeBacklogged: kind.isWrite && server.store.isWriteBacklogged) {
            case .run:
                run(command, spec: spec, kind: kind, context: context)
                if out.readableBytes >= Self.flushThreshold { flushReplies(context: context) }
            case .pause:
                // Writes arrive faster than the disk tier takes them: hold this one (and this
                // connection) until it catches up, so the queue, and memory, stay bounded.
                flushReplies(context: context)
                context.eventLoop.assumeIsolated().scheduleTask(in: Self.backpressurePause) {
                    self.machine.pauseEnded()
                    self.process(context: context)
                    self.flushReplies(context: context)
                }
                break loop
            case .hold:
                break loop
            }
        }
        if input.readerIndex >= machine.readAheadLimit { input.discardReadBytes() }
        guard context.channel.isWritable else { return }
        switch machine.settle() {
        case .closeWithError(let message):
            out.writeRESPError(message)
            closeAfterFlush(context: context)
        case .close:
            closeAfterFlush(context: context)
        case .none:
            resumeReading(context: context)
        }
    }

    private static func kind(of spec: CommandSpec?) -> ConnectionStateMachine.CommandKind {
        guard let spec else { return .other }
        if spec.flags.contains(.write) { return .write }
        // A read of keys cannot change what another read sees, so it may overtake replies.
        return spec.firstKey > 0 && !spec.flags.contains(.admin) ? .read : .other
    }

    private func run(_ command: RESPCommand, spec: CommandSpec?, kind: ConnectionStateMachine.CommandKind, context: ChannelHandlerContext) {
        guard let caller else { return }
        if let spec { publish(spec, command) }
        let mark = out.writerIndex
        let modeBefore = replyMode
        let execution = executor.execute(command.arguments, spec: spec, caller: caller, into: &out)
        if spec?.flags.contains(.admin) == true { refreshCaller() }
        let silent = replySilenced(command, spec: spec, modeBefore: modeBefore)
        switch execution.result {
        case .written:
            // Scripts answer errors they return as plain replies: the first byte tells.
            if out.writerIndex > mark, out.getInteger(at: mark, as: UInt8.self) == UInt8(ascii: "-") {
                countError(out.readableBytesView.dropFirst(mark - out.readerIndex))
            }
            if silent { out.moveWriterIndex(to: mark) }
            if machine.hasPendingReplies && out.writerIndex > mark {
                // Ready now, but an earlier reply is not: wait in line.
                let reply = out.getSlice(at: mark, length: out.writerIndex - mark)!
                out.moveWriterIndex(to: mark)
                machine.queueReady(reply)
            }
        case .pending(let future):
            if machine.isPeer || kind.isConcurrentRead || !kind.isWrite {
                // Replies kept in order; the commands after it carry on.
                let ticket = machine.replyPending()
                future.hop(to: context.eventLoop).assumeIsolated().whenSuccess { reply in
                    self.countError(reply.bytes.readableBytesView)
                    self.arrived(ticket, silent ? ByteBuffer() : reply.bytes, context: context)
                }
            } else {
                machine.awaitReply()
                flushReplies(context: context)
                future.hop(to: context.eventLoop).assumeIsolated().whenSuccess { reply in
                    guard self.machine.answered() else { return }
                    self.countError(reply.bytes.readableBytesView)
                    var bytes = reply.bytes
                    if !silent { self.out.writeBuffer(&bytes) }
                    self.process(context: context)
                    self.flushReplies(context: context)
                }
            }
        }
        if execution.closeAfterReply {
            machine.close()
            closeAfterFlush(context: context)
        }
    }

    /// Counts an error reply (`-CODE message\r\n`) for INFO's errorstats.
    private func countError(_ reply: ByteBufferView) {
        guard reply.first == UInt8(ascii: "-") else { return }
        server.counters.countError(reply.dropFirst())
    }

    /// Whether CLIENT REPLY drops this command's reply: every reply while OFF, the next one after
    /// SKIP (which then ends); CLIENT REPLY OFF and SKIP themselves answer nothing, ON answers OK.
    private func replySilenced(_ command: RESPCommand, spec: CommandSpec?, modeBefore: ClientSession.ReplyMode) -> Bool {
        if spec?.name == "client", command.arguments.count == 3,
            String(buffer: command.arguments[1]).uppercased() == "REPLY"
        {
            return replyMode != .on || modeBefore == .off && String(buffer: command.arguments[2]).uppercased() != "ON"
        }
        if modeBefore == .skip {
            replyMode = .on
            session?.state.withLock { if $0.replyMode == .skip { $0.replyMode = .on } }
        }
        return modeBefore != .on
    }

    /// A reply that was to come later is here: write what is ready, in order.
    private func arrived(_ ticket: Int, _ reply: ByteBuffer, context: ChannelHandlerContext) {
        let drained = machine.arrived(ticket, reply)
        guard !drained.replies.isEmpty || drained.resume else { return }
        for var ready in drained.replies { out.writeBuffer(&ready) }
        if drained.resume { process(context: context) }
        flushReplies(context: context)
        resumeReading(context: context)
    }

    /// What CLIENT LIST shows (the last command, idle seconds): published when the command
    /// changes or a second has passed, not under the session's lock for every command.
    private func publish(_ spec: CommandSpec, _ command: RESPCommand) {
        guard let session else { return }
        let fullName = spec.flags.contains(.container) && command.arguments.count > 1
            ? spec.name + "|" + String(buffer: command.arguments[1]).lowercased() : spec.name
        if fullName != publishedCommand || readTime - publishedTime >= 1000 || spec.flags.contains(.admin) {
            publishedCommand = fullName
            publishedTime = readTime
            let time = readTime
            session.state.withLock {
                $0.lastCommand = fullName
                $0.lastActivity = time
            }
        }
    }

    private func refreshCaller() {
        guard let session, var caller else { return }
        let open = server.configuration.requirePass == nil
        let (version, authenticated, isPeer, inTransaction) = session.state.withLock {
            ($0.protocolVersion, open || $0.authenticated, $0.isPeer, $0.transaction != nil)
        }
        let (mode, subscribed) = session.state.withLock { ($0.replyMode, $0.isSubscribed) }
        replyMode = mode
        caller.subscribed = subscribed
        caller.inTransaction = inTransaction
        caller.version = version
        caller.authenticated = authenticated
        caller.origin = isPeer ? .peer : .client
        machine.isPeer = isPeer
        self.caller = caller
    }

    // MARK: Pub/sub

    /// A pub/sub message (or a MONITOR line) for this client: written after the replies already out, then checked
    /// against `client-output-buffer-limit pubsub`, so a subscriber that does not read is closed
    /// before it holds the node's memory.
    private func push(_ message: ByteBuffer) {
        guard let context, machine.state != .closed else { return }
        var bytes = message
        out.writeBuffer(&bytes)
        flushReplies(context: context)
        guard let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes) else { return }
        let limit = server.pubsubOutputLimit.withLock { $0 }
        let now = currentTimeMilliseconds()
        var exceeded = limit.hard > 0 && buffered > limit.hard
        if limit.soft > 0 && buffered > limit.soft {
            let since = overSoftLimitSince ?? now
            overSoftLimitSince = since
            exceeded = exceeded || now - since >= Int64(limit.softSeconds) * 1000
        } else {
            overSoftLimitSince = nil
        }
        if exceeded {
            server.metrics.pubsubDisconnections.increment()
            server.logger.notice(
                "closing a subscriber over client-output-buffer-limit pubsub",
                metadata: ["client": "\(session?.address ?? "?")", "buffered": "\(buffered)"])
            machine.close()
            context.close(promise: nil)
        }
    }

    // MARK: Output

    private func countOut(_ bytes: Int) {
        server.counters.bytesOut.wrappingAdd(bytes, ordering: .relaxed)
    }

    private func flushReplies(context: ChannelHandlerContext) {
        guard out.readableBytes > 0 else { return }
        countOut(out.readableBytes)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        out = context.channel.allocator.buffer(capacity: 1024)
    }

    private func closeAfterFlush(context: ChannelHandlerContext) {
        input = ByteBuffer()
        let pending = out
        out = ByteBuffer()
        countOut(pending.readableBytes)
        context.writeAndFlush(wrapOutboundOut(pending)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
