import Logging
import NIOCore
import RESP
import StrataStore

/// One client connection: runs its commands in order and writes their replies in order.
///
/// Commands that only touch the memory tier run right here on the event loop. A command that
/// may read the disk tier runs on the disk thread pool, a command on keys another node owns is
/// forwarded there, and a write under `--fsync always` waits for its sync. While such a command
/// runs, the connection's next reads of keys run too (their replies wait in `ordered`, in
/// order), but a write or a connection command waits, unparsed or `stalled`, until everything
/// before it has answered, so a client's commands take effect in the order it sent them.
///
/// A peer's connection (another node forwarding, replicating or streaming) runs every command
/// without waiting for the ones before: its commands come from many clients at once (each
/// client's own commands arrive one at a time, as its node waits for each write), and one
/// pipelined peer connection would otherwise run one disk read or replica acknowledgement at a
/// time.
///
/// Replies collect in `out` and are written once per read batch. When the client stops reading
/// and the channel's outbound buffer passes its high-water mark, the handler stops executing
/// commands and stops reading the socket, so a client that pipelines without reading
/// cannot grow the node's memory.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: Server
    private var session: ClientSession?
    private var out = ByteBuffer()
    /// Bytes received and not yet run as commands. Commands are parsed from here only when they
    /// can run, so a waiting connection holds bytes, not parsed commands. (Parsing here rather
    /// than in a `ByteToMessageHandler` also saves a pipeline hop and a type cast per command.)
    private var input = ByteBuffer()
    private var parser: RESPCommandParser
    private let maxBuffered: Int
    private var busy = false
    /// When the last bytes arrived (ms since the epoch), and what was last published to the session.
    private var readTime: Int64 = 0
    private var publishedCommand = ""
    private var publishedTime: Int64 = 0
    /// A write held back while the disk tier's write queue is full; it runs first on resuming.
    private var stalled: RESPCommand?
    /// `stalled` waits for every earlier reply (a client's write after reads still running).
    private var barrier = false
    /// The replies from the first still-running command on, in order (a peer's commands, or a
    /// client's reads, run without waiting for the ones before).
    private var ordered = CircularBuffer<OrderedReply>()
    /// The sequence number of `ordered.first`.
    private var orderedBase = 0
    /// Most commands a peer's connection may have running before the handler stops reading.
    private static let maxOutstanding = 4096
    private var readWithheld = false
    private var closing = false
    private var pendingProtocolError: String?
    /// The node is shutting down: finish what is running, then close.
    private var quiescing = false
    /// The session's protocol, authentication and peer flag, read here without its lock; only
    /// connection commands (flag `.admin`) change them, and the cache is refreshed after each.
    private var cached = (version: RESPVersion.v2, authenticated: false, isPeer: false)
    private let alwaysSync: Bool

    /// Replies are written out when this much has collected, even mid-batch.
    private static let flushThreshold = 64 << 10
    /// Unrun bytes past which the handler stops reading while a command waits.
    private static let readAheadLimit = 64 << 10

    private struct OrderedReply {
        var reply: ByteBuffer?
        /// Where to record the command's latency when its reply goes out (nil: recorded already).
        let metrics: CommandMetrics?
        let start: ContinuousClock.Instant
    }

    /// A command is running or a reply is waiting for an earlier one.
    private var waiting: Bool { busy || !ordered.isEmpty }

    init(server: Server) {
        self.server = server
        self.alwaysSync = server.store.configuration.fsync == .always
        self.parser = RESPCommandParser(limits: RESPDecoderLimits(maxBulkLength: server.configuration.maxValueSize))
        self.maxBuffered = server.configuration.maxValueSize + (1 << 20)
    }

    // MARK: Lifecycle

    func channelActive(context: ChannelHandlerContext) {
        out = context.channel.allocator.buffer(capacity: 4096)
        server.connectionsReceived.wrappingAdd(1, ordering: .relaxed)
        server.metrics.connections.increment()
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
            server.connectionsRejected.wrappingAdd(1, ordering: .relaxed)
            server.metrics.rejectedConnections.increment()
            closing = true
            var reply = context.channel.allocator.buffer(capacity: 64)
            reply.writeRESPError("ERR max number of clients reached")
            server.bytesOut.wrappingAdd(reply.readableBytes, ordering: .relaxed)
            server.metrics.bytesOut.increment(by: Int64(reply.readableBytes))
            context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        self.session = session
        refreshCache()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let session {
            _ = server.clients.withLock { $0.removeValue(forKey: session.id) }
        }
        closing = true
        context.fireChannelInactive()
    }

    static func describe(_ address: SocketAddress) -> String {
        "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
    }

    // MARK: Input

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        readTime = currentTimeMilliseconds()
        server.bytesIn.wrappingAdd(incoming.readableBytes, ordering: .relaxed)
        server.metrics.bytesIn.increment(by: Int64(incoming.readableBytes))
        guard !closing, session != nil, pendingProtocolError == nil else { return }
        if input.readableBytes == 0 {
            input = incoming
        } else if input.readableBytes < Self.readAheadLimit {
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
        pendingProtocolError = message
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
            quiescing = true
            process(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Backpressure

    func read(context: ChannelHandlerContext) {
        if !context.channel.isWritable || pendingProtocolError != nil || (busy && input.readableBytes >= Self.readAheadLimit) {
            readWithheld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            process(context: context)
            flushReplies(context: context)
            if readWithheld && pendingProtocolError == nil {
                readWithheld = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Execution

    private func process(context: ChannelHandlerContext) {
        while !busy && !closing && pendingProtocolError == nil {
            if !context.channel.isWritable { return }
            let command: RESPCommand?
            if let held = stalled {
                command = held
                stalled = nil
            } else {
                do {
                    command = try parser.next(&input)
                } catch {
                    server.metrics.protocolErrors.increment()
                    pendingProtocolError = error.message
                    input = ByteBuffer()
                    break
                }
            }
            guard let command else { break }
            if server.store.isWriteBacklogged, let name = command.arguments.first,
                server.commands.lookup(name)?.flags.contains(.write) == true
            {
                // Writes arrive faster than the disk tier takes them: hold this one (and this
                // connection) until it catches up, so the queue, and memory, stay bounded.
                stalled = command
                busy = true
                flushReplies(context: context)
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(2)) {
                    self.busy = false
                    self.process(context: context)
                    self.flushReplies(context: context)
                }
                break
            }
            if !cached.isPeer && !ordered.isEmpty && !isConcurrentRead(command) {
                // A client's write (or connection command) runs once its earlier reads have
                // answered, so its commands take effect in the order it sent them.
                stalled = command
                busy = true
                barrier = true
                break
            }
            executeOrdered(command, context: context)
            if out.readableBytes >= Self.flushThreshold { flushReplies(context: context) }
        }
        if input.readerIndex >= Self.readAheadLimit { input.discardReadBytes() }
        if !waiting && !closing, let message = pendingProtocolError {
            closing = true
            out.writeRESPError(message)
            closeAfterFlush(context: context)
        } else if !waiting && !closing && quiescing {
            closing = true
            closeAfterFlush(context: context)
        } else if !busy, readWithheld, context.channel.isWritable, pendingProtocolError == nil {
            readWithheld = false
            context.read()
        }
    }

    /// Whether `command` may run while earlier commands of the connection have not answered: a
    /// read of keys (reads cannot change what another read sees).
    private func isConcurrentRead(_ command: RESPCommand) -> Bool {
        guard let name = command.arguments.first, let spec = server.commands.lookup(name) else { return false }
        return spec.firstKey > 0 && !spec.flags.contains(.write) && !spec.flags.contains(.admin)
    }

    /// Runs a command; if an earlier reply is still pending, this one's reply queues behind it.
    private func executeOrdered(_ command: RESPCommand, context: ChannelHandlerContext) {
        let mark = out.writerIndex
        let pendingBefore = orderedBase + ordered.count
        execute(command, context: context)
        let enqueued = orderedBase + ordered.count != pendingBefore
        if !enqueued && !ordered.isEmpty && out.writerIndex > mark {
            // Ready now, but an earlier reply is not: wait in line (its metrics are recorded).
            let reply = out.getSlice(at: mark, length: out.writerIndex - mark)!
            out.moveWriterIndex(to: mark)
            ordered.append(OrderedReply(reply: reply, metrics: nil, start: .now))
        }
        if ordered.count >= Self.maxOutstanding { busy = true }
    }

    /// Queues the reply `future` will give, and carries on (a peer's command, or a client's read).
    private func waitInOrder(
        _ future: EventLoopFuture<ByteBuffer>, metrics: CommandMetrics, start: ContinuousClock.Instant,
        context: ChannelHandlerContext
    ) {
        let sequence = orderedBase + ordered.count
        ordered.append(OrderedReply(reply: nil, metrics: metrics, start: start))
        future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            let position = sequence - self.orderedBase
            guard position >= 0, position < self.ordered.count else { return }
            var reply = ByteBuffer()
            switch result {
            case .success(let bytes): reply = bytes
            case .failure(let error): reply.writeRESPError(Server.replyText(for: error))
            }
            self.ordered[self.ordered.index(self.ordered.startIndex, offsetBy: position)].reply = reply
            self.drainOrdered(context: context)
        }
    }

    /// Writes the replies at the head of `ordered` that are ready.
    private func drainOrdered(context: ChannelHandlerContext) {
        var wrote = false
        while let first = ordered.first, var reply = first.reply {
            ordered.removeFirst()
            orderedBase += 1
            let mark = out.writerIndex
            out.writeBuffer(&reply)
            if let metrics = first.metrics { finish(metrics: metrics, start: first.start, replyAt: mark) }
            wrote = true
        }
        guard wrote else { return }
        if busy && (barrier ? ordered.isEmpty : ordered.count < Self.maxOutstanding / 2) {
            busy = false
            barrier = false
            process(context: context)
        } else if ordered.isEmpty && (quiescing || pendingProtocolError != nil) {
            process(context: context)
        }
        flushReplies(context: context)
        if readWithheld && !busy && context.channel.isWritable && pendingProtocolError == nil {
            readWithheld = false
            context.read()
        }
    }

    private func execute(_ command: RESPCommand, context: ChannelHandlerContext) {
        guard let session, let nameBuffer = command.arguments.first else { return }
        server.commandsProcessed.wrappingAdd(1, ordering: .relaxed)
        guard let spec = server.commands.lookup(nameBuffer) else {
            server.metrics.unknown.calls.increment()
            server.metrics.unknown.errors.increment()
            // Redis' exact text: arguments are echoed until 128 bytes of them have been shown.
            var args: [UInt8] = []
            for argument in command.arguments.dropFirst() where args.count < 128 {
                args += Array("'".utf8) + Array(argument.readableBytesView.prefix(128 - args.count)) + Array("' ".utf8)
            }
            out.writeRESPError(
                "ERR unknown command '\(String(decoding: nameBuffer.readableBytesView.prefix(128), as: UTF8.self))', "
                    + "with args beginning with: \(String(decoding: args, as: UTF8.self))")
            return
        }
        let metrics = spec.metrics ?? server.metrics.unknown
        metrics.calls.increment()
        // Redis' order: unknown command, then arity, then authentication.
        guard spec.arityMatches(command.arguments.count) else {
            metrics.errors.increment()
            out.writeRESPError(CommandError.arity(spec.name).message)
            return
        }
        guard cached.authenticated || spec.flags.contains(.noAuth) else {
            metrics.errors.increment()
            out.writeRESPError("NOAUTH Authentication required.")
            return
        }
        // A write that runs here is sent on to the keys' other owners, whoever sent it (a peer
        // forwards writes to the coordinator, which replicates them).
        let clustered = server.cluster?.isClustered == true
        var replicateAfter = clustered && spec.routes && spec.flags.contains(.write)
        if clustered, spec.routes, !cached.isPeer {
            switch server.route(command.arguments, spec: spec, session: session, eventLoop: context.eventLoop) {
            case .local(let replicate):
                replicateAfter = replicate
            case .remote(let future):
                if spec.flags.contains(.write) {
                    waitFor(future, metrics: metrics, start: ContinuousClock.now, context: context)
                } else {
                    // Reads forwarded to other nodes are pipelined, replies kept in order.
                    waitInOrder(future, metrics: metrics, start: ContinuousClock.now, context: context)
                }
                return
            }
        }
        let fullName = spec.flags.contains(.container) && command.arguments.count > 1
            ? spec.name + "|" + String(buffer: command.arguments[1]).lowercased() : spec.name
        // What CLIENT LIST shows (the last command, idle seconds): published when the command
        // changes or a second has passed, not under the session's lock for every command.
        if fullName != publishedCommand || readTime - publishedTime >= 1000 || spec.flags.contains(.admin) {
            publishedCommand = fullName
            publishedTime = readTime
            session.state.withLock {
                $0.lastCommand = fullName
                $0.lastActivity = readTime
            }
        }
        let start = ContinuousClock.now
        let mark = out.writerIndex
        var invocation = Invocation(
            arguments: command.arguments, name: spec.name, session: session, server: server, eventLoop: context.eventLoop,
            version: cached.version, out: out)
        out = ByteBuffer()  // `invocation` owns the buffer while the handler runs (no copy on write)
        var outcome: Outcome
        do {
            outcome = try spec.handler(&invocation)
        } catch {
            invocation.out.moveWriterIndex(to: mark)
            invocation.out.writeRESPError(Server.replyText(for: error))
            outcome = .done
        }
        out = invocation.out
        if spec.flags.contains(.admin) { refreshCache() }
        let isWrite = spec.flags.contains(.write)
        if replicateAfter {
            // In a cluster the coordinator sends the written keys to their other owners; with a
            // write quorum above 1 the reply waits for their acknowledgements.
            let keys = spec.keys(in: command.arguments).map { Array($0.readableBytesView) }
            let loop = context.eventLoop
            let server = self.server
            switch outcome {
            case .done where !Server.isError(out.getSlice(at: mark, length: out.writerIndex - mark) ?? ByteBuffer()):
                let replicated = server.replicate(keys, eventLoop: loop)
                if (server.cluster?.configuration.writeQuorum ?? 1) > 1 {
                    let reply = out.getSlice(at: mark, length: out.writerIndex - mark)!
                    out.moveWriterIndex(to: mark)
                    outcome = .deferred(replicated.map { reply }.recover { Server.errorReply(Server.replyText(for: $0)) })
                }
            case .deferred(let future):
                outcome = .deferred(future.flatMap { reply in
                    Server.isError(reply) ? loop.makeSucceededFuture(reply)
                        : server.replicate(keys, eventLoop: loop).map { reply }.recover { Server.errorReply(Server.replyText(for: $0)) }
                })
            default:
                break
            }
        }

        switch outcome {
        case .done:
            if isWrite && alwaysSync && out.getInteger(at: mark, as: UInt8.self) != UInt8(ascii: "-") {
                // Under --fsync always, a write's reply waits until its commit is synced.
                let reply = out.getSlice(at: mark, length: out.writerIndex - mark)!
                out.moveWriterIndex(to: mark)
                let durable = ClientHandler.durable(reply, store: server.store, on: context.eventLoop)
                if cached.isPeer {
                    waitInOrder(durable, metrics: metrics, start: start, context: context)
                } else {
                    waitFor(durable, metrics: metrics, start: start, context: context)
                }
            } else {
                finish(metrics: metrics, start: start, replyAt: mark)
            }
        case .deferred(let future):
            let loop = context.eventLoop
            let store = server.store
            let result = isWrite && alwaysSync ? future.flatMap { reply in
                Server.isError(reply) ? loop.makeSucceededFuture(reply) : ClientHandler.durable(reply, store: store, on: loop)
            } : future
            if cached.isPeer || !isWrite {
                waitInOrder(result, metrics: metrics, start: start, context: context)
            } else {
                waitFor(result, metrics: metrics, start: start, context: context)
            }
        }
        if invocation.closeAfterReply {
            closing = true
            closeAfterFlush(context: context)
        }
    }

    private func refreshCache() {
        guard let session else { return }
        let open = server.configuration.requirePass == nil
        cached = session.state.withLock { ($0.protocolVersion, open || $0.authenticated, $0.isPeer) }
    }

    /// A future of `reply` that completes once every write so far is synced.
    private static func durable(_ reply: ByteBuffer, store: TieredStore, on eventLoop: any EventLoop) -> EventLoopFuture<ByteBuffer> {
        let promise = eventLoop.makePromise(of: ByteBuffer.self)
        store.whenDurable(store.writeTicket) { error in
            if let error {
                var failure = ByteBufferAllocator().buffer(capacity: 64)
                failure.writeRESPError("ERR write not persisted: \(error.message)")
                promise.succeed(failure)
            } else {
                promise.succeed(reply)
            }
        }
        return promise.futureResult
    }

    private func waitFor(
        _ future: EventLoopFuture<ByteBuffer>, metrics: CommandMetrics, start: ContinuousClock.Instant,
        context: ChannelHandlerContext
    ) {
        busy = true
        flushReplies(context: context)
        future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            self.busy = false
            guard !self.closing || self.pendingProtocolError != nil else { return }
            let mark = self.out.writerIndex
            switch result {
            case .success(var reply): self.out.writeBuffer(&reply)
            case .failure(let error): self.out.writeRESPError(Server.replyText(for: error))
            }
            self.finish(metrics: metrics, start: start, replyAt: mark)
            self.process(context: context)
            self.flushReplies(context: context)
        }
    }

    private func finish(metrics: CommandMetrics, start: ContinuousClock.Instant, replyAt mark: Int) {
        if out.getInteger(at: mark, as: UInt8.self) == UInt8(ascii: "-") { metrics.errors.increment() }
        metrics.duration.record(ContinuousClock.now - start)
    }

    // MARK: Output

    private func flushReplies(context: ChannelHandlerContext) {
        guard out.readableBytes > 0 else { return }
        server.bytesOut.wrappingAdd(out.readableBytes, ordering: .relaxed)
        server.metrics.bytesOut.increment(by: Int64(out.readableBytes))
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        out = context.channel.allocator.buffer(capacity: 1024)
    }

    private func closeAfterFlush(context: ChannelHandlerContext) {
        input = ByteBuffer()
        let pending = out
        out = ByteBuffer()
        server.bytesOut.wrappingAdd(pending.readableBytes, ordering: .relaxed)
        server.metrics.bytesOut.increment(by: Int64(pending.readableBytes))
        context.writeAndFlush(wrapOutboundOut(pending)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
