// The load itself: per event loop, a LoopState with its Stats and client slots; per slot, one TCP
// connection (re-established if it fails) keeping `pipeline` requests in flight.
//
// Concurrency: a LoopState, its Slots and their handlers are used only on that loop's thread
// (they are created there or before the loop sees them, and only reached through
// `loop.execute/submit`), hence `@unchecked Sendable` without locks.
import NIOCore
import NIOPosix

enum Phase: Sendable {
    /// Write every key of [0, keys) once, in order, split between the loops.
    case fill
    /// GETs and SETs on keys from the chooser.
    case mixed
}

struct PhaseConfig: Sendable {
    var phase: Phase
    var proto: WireProtocol
    var targets: [SocketAddress]
    var connections: Int
    var pipeline: Int
    var keys: UInt64
    var chooser: KeyChooser
    var readRatio: Double
    var encoder: RequestEncoder
    var durationNanos: UInt64?      // nil: until `requests` are done (or the fill is done)
    var requests: UInt64?
    var intervalNanos: UInt64
    var hitCheck: Bool
    var connectTimeoutNanos: UInt64  // keep retrying a connection this long (0: one attempt)
    var replyTimeoutNanos: UInt64    // a connection with no reply this long is closed
    var drainNanos: UInt64           // after the deadline, wait this long for in-flight replies
    var seed: UInt64
}

final class LoopState: @unchecked Sendable {
    let loop: any EventLoop
    let config: PhaseConfig
    let stats: Stats
    let start: UInt64
    let deadline: UInt64
    var stopping = false
    var slots: [Slot] = []
    var fillNext: UInt64 = 0
    var fillEnd: UInt64 = 0
    var watchdog: RepeatedTask?

    init(loop: any EventLoop, config: PhaseConfig, start: UInt64) {
        self.loop = loop
        self.config = config
        self.start = start
        deadline = config.durationNanos.map { start &+ $0 } ?? .max
        stats = Stats(phaseStart: start, intervalNanos: config.intervalNanos,
                      expectedLength: config.encoder.value.count, hitCheck: config.hitCheck, keys: config.keys)
    }

    /// On the loop: start every slot, the deadline and the watchdog.
    func begin() {
        if deadline != .max {
            let now = nowNanos()
            loop.scheduleTask(in: .nanoseconds(Int64(deadline > now ? deadline - now : 0))) { self.stop() }
        }
        watchdog = loop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(200)) { _ in
            self.checkStalls()
        }
        for slot in slots { slot.connect() }
    }

    func stop() {
        guard !stopping else { return }
        stopping = true
        for slot in slots { slot.stopIfIdle() }
        if config.drainNanos > 0 {
            loop.scheduleTask(in: .nanoseconds(Int64(config.drainNanos))) {
                for slot in self.slots { slot.forceStop() }
            }
        }
    }

    private func checkStalls() {
        let now = nowNanos()
        for slot in slots { slot.checkStall(now) }
        if slots.allSatisfy({ $0.finished }) {
            watchdog?.cancel()
            watchdog = nil
        }
    }

    /// The next request for a slot, or nil when it should send no more.
    @inline(__always)
    func nextRequest(_ slot: Slot, now: UInt64) -> (key: UInt64, isGet: Bool)? {
        if stopping { return nil }
        if now >= deadline {
            stop()
            return nil
        }
        switch config.phase {
        case .fill:
            guard fillNext < fillEnd else { return nil }
            let k = fillNext
            fillNext += 1
            return (k, false)
        case .mixed:
            if slot.remaining == 0 { return nil }
            slot.remaining -= 1
            let key = config.chooser.next(&slot.rng)
            let isGet = config.readRatio >= 1.0 || slot.rng.nextDouble() < config.readRatio
            return (key, isGet)
        }
    }
}

final class Slot: @unchecked Sendable {
    let state: LoopState
    let target: SocketAddress
    let index: Int
    var rng: FastRandom
    var remaining: UInt64
    let done: EventLoopPromise<Void>
    var finished = false
    var handler: LoadHandler?
    var channel: (any Channel)?
    /// Retrying connects until this time (monotonic ns).
    var retryUntil: UInt64 = 0
    var everConnected = false
    /// When this slot last got a reply (or started).
    var lastReply: UInt64

    init(state: LoopState, target: SocketAddress, index: Int, remaining: UInt64) {
        self.state = state
        self.target = target
        self.index = index
        self.remaining = remaining
        rng = FastRandom(seed: state.config.seed &+ UInt64(index) &* 0x9E37_79B9)
        done = state.loop.makePromise()
        lastReply = state.start
    }

    func connect() {
        if retryUntil == 0 { retryUntil = nowNanos() &+ state.config.connectTimeoutNanos }
        let config = state.config
        let bootstrap = ClientBootstrap(group: state.loop)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = LoadHandler(slot: self, config: config)
                    self.handler = handler
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        bootstrap.connect(to: target).whenComplete { result in
            switch result {
            case .success(let channel):
                self.channel = channel
                self.everConnected = true
                self.state.stats.s.connects += 1
                if self.state.stopping { self.finish() }  // handler closes it
            case .failure(let error):
                let now = nowNanos()
                self.state.stats.connectFailed(now, error)
                self.retryOrFinish(now)
            }
        }
    }

    /// 20-60 ms, random per attempt, so the connections' attempts spread out and the first one
    /// to get through after a server starts is late by a millisecond or so, not up to 50.
    private func retryDelay() -> TimeAmount {
        .microseconds(Int64(20_000 + rng.below(40_000)))
    }

    private func retryOrFinish(_ now: UInt64) {
        if !state.stopping && now < retryUntil {
            state.loop.scheduleTask(in: retryDelay()) {
                if self.state.stopping { self.finish() } else { self.connect() }
            }
        } else {
            finish()
        }
    }

    /// The connection closed (by us at the end, or by the server / an error).
    func channelClosed(lostInFlight: Int, deliberate: Bool) {
        channel = nil
        handler = nil
        if finished { return }
        let now = nowNanos()
        if !deliberate {
            state.stats.disconnected(now, lost: lostInFlight)
        }
        if state.stopping || deliberate || workDone {
            finish()
            return
        }
        // Reconnect, while the last reply is recent: a server that accepts connections but never
        // answers (stopped, overloaded) ends the slot instead of cycling forever.
        let window = max(state.config.connectTimeoutNanos, 2_000_000_000) &+ state.config.replyTimeoutNanos
        retryUntil = lastReply &+ window
        if now >= retryUntil {
            finish()
            return
        }
        state.loop.scheduleTask(in: retryDelay()) {
            if self.state.stopping { self.finish() } else { self.connect() }
        }
    }

    var workDone: Bool {
        switch state.config.phase {
        case .fill: return state.fillNext >= state.fillEnd
        case .mixed: return remaining == 0
        }
    }

    /// A handler has no requests in flight and nothing more to send.
    func idle() {
        handler?.closeDeliberately()
        if handler == nil { finish() }
    }

    func stopIfIdle() {
        if let handler {
            if handler.inFlight == 0 { handler.closeDeliberately() }
        } else if channel == nil {
            // between connect attempts: the retry task will finish it; a pending connect finishes on completion
        }
    }

    func forceStop() {
        if let handler {
            state.stats.s.timeouts += UInt64(handler.inFlight)
            handler.closeDeliberately()
        }
        // a connect in progress completes within its 2 s timeout and then finishes
    }

    func checkStall(_ now: UInt64) {
        guard let handler, handler.inFlight > 0 else { return }
        if now &- handler.lastProgress > state.config.replyTimeoutNanos {
            state.stats.s.timeouts += 1
            handler.closeAfterStall()
        }
    }

    func finish() {
        guard !finished else { return }
        finished = true
        done.succeed(())
    }
}

final class LoadHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let slot: Slot
    let state: LoopState
    let stats: Stats
    let encoder: RequestEncoder
    let pipeline: Int
    var parser: ReplyParser
    var cumulation: ByteBuffer?
    var sendBuffer: ByteBuffer
    var context: ChannelHandlerContext?
    var closing = false
    var deliberate = false
    var lastProgress: UInt64 = 0

    // in-flight requests, oldest first (a ring of `pipeline` entries)
    let sentAt: UnsafeMutablePointer<UInt64>
    let keyOf: UnsafeMutablePointer<UInt64>
    let getFlag: UnsafeMutablePointer<Bool>
    /// Replies to one write request (5 for a MULTI/EXEC of three SETs), and how many of the
    /// head request's have come.
    let writeReplies: Int
    var headReplies = 0
    var head = 0
    var inFlight = 0

    init(slot: Slot, config: PhaseConfig) {
        self.slot = slot
        state = slot.state
        stats = slot.state.stats
        encoder = config.encoder
        writeReplies = config.encoder.form.replies
        pipeline = config.pipeline
        parser = ReplyParser(proto: config.proto)
        sendBuffer = ByteBufferAllocator().buffer(capacity: config.pipeline * max(encoder.getSize, encoder.setSize))
        sentAt = .allocate(capacity: config.pipeline)
        keyOf = .allocate(capacity: config.pipeline)
        getFlag = .allocate(capacity: config.pipeline)
    }

    deinit {
        sentAt.deallocate()
        keyOf.deallocate()
        getFlag.deallocate()
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        lastProgress = nowNanos()
        send(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        let lost = inFlight
        inFlight = 0
        slot.channelClosed(lostInFlight: lost, deliberate: deliberate)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if state.stats.s.firstConnectError == nil { state.stats.s.firstConnectError = "\(error)" }
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var c = cumulation {
            cumulation = nil
            c.writeBuffer(&buffer)
            buffer = c
        }
        let now = nowNanos()
        lastProgress = now
        slot.lastReply = now
        do {
            let consumed = try buffer.withUnsafeReadableBytes { bytes in
                try parser.parse(bytes) { reply in complete(reply, now: now) }
            }
            buffer.moveReaderIndex(forwardBy: consumed)
        } catch {
            stats.s.protocolErrors += 1
            if stats.s.firstError == nil { stats.s.firstError = "\(error)" }
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            cumulation = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        send(context)
    }

    @inline(__always)
    private func complete(_ reply: Reply, now: UInt64) {
        guard inFlight > 0 else {
            // a reply to nothing: the server is confused; count it and drop the connection
            stats.s.protocolErrors += 1
            return
        }
        let i = head
        if !getFlag[i] && writeReplies > 1 {
            // A transaction's request: MULTI's and the QUEUED replies come before EXEC's.
            headReplies += 1
            if headReplies < writeReplies { return }
            headReplies = 0
        }
        head = head + 1 == pipeline ? 0 : head + 1
        inFlight -= 1
        stats.record(latency: now &- sentAt[i], now: now, isGet: getFlag[i], key: keyOf[i], reply: reply)
        if case .error = reply, stats.s.firstError == nil, let line = parser.firstErrorLine {
            stats.s.firstError = line
        }
    }

    private func send(_ context: ChannelHandlerContext) {
        guard !closing else { return }
        let now = nowNanos()
        sendBuffer.clear()
        var added = 0
        while inFlight < pipeline {
            guard let (key, isGet) = state.nextRequest(slot, now: now) else { break }
            if isGet {
                encoder.writeGet(key: key, into: &sendBuffer)
            } else {
                encoder.writeSet(key: key, into: &sendBuffer)
            }
            var tail = head + inFlight
            if tail >= pipeline { tail -= pipeline }
            sentAt[tail] = now
            keyOf[tail] = key
            getFlag[tail] = isGet
            inFlight += 1
            added += 1
        }
        if added > 0 {
            if inFlight == added { lastProgress = now }
            context.writeAndFlush(wrapOutboundOut(sendBuffer), promise: nil)
        } else if inFlight == 0 {
            slot.idle()
        }
    }

    func closeDeliberately() {
        guard !closing, let context else { return }
        closing = true
        deliberate = true
        context.close(promise: nil)
    }

    func closeAfterStall() {
        guard !closing, let context else { return }
        closing = true
        context.close(promise: nil)
    }
}
